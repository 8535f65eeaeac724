#!/bin/sh
# Seeds for fuzz_html: small documents with the structures the extractor
# treats specially (noise elements, headings, code blocks, links, tables).
set -eu
out=$1
printf '%s' '<html><head><title>T</title><style>x{}</style><script>s()</script></head><body><nav><a href="a.html">n</a></nav><header>h</header><main><h1>Title</h1><p>Text <code>c</code></p><pre><code>def f():\n    return 1</code></pre></main><footer>f</footer></body></html>' >"$out/page.html"
printf '%s' '<article><header><h2>A</h2></header><ul><li>one<li>two</ul><table><tr><td>a<td>b</table><a href="../x#y">x</a><a class="headerlink" href="#h">¶</a></article>' >"$out/article.html"
printf '%s' 'Title\n=====\n\n# Heading\n```\n# code\n```\ntext' >"$out/text.md"
printf '%s' '<div><div><div><p>deep<br>line<hr></div></div></div><a href="//other/x">o</a><a href="mailto:x@y">m</a>' >"$out/nest.html"
