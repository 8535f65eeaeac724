/* HTML to prompt text with libxml2's recovering HTML parser: page chrome
 * (script, style, nav, header, footer, aside, ...) dropped, headings kept as
 * "#" lines, code blocks kept verbatim in ``` fences, links collected. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libxml/HTMLparser.h>
#include <libxml/tree.h>

#include "common.h"
#include "dbuf.h"
#include "internal.h"

#define MAX_LINKS 10000
/* API entry lists nested deeper than this (a class's methods are one level)
 * keep the heading of the entry that holds them. */
#define MAX_ENTRY_DEPTH 8

typedef struct emitter {
  dbuf out;
  bool pending_space;
  int in_heading;  /* inside h1..h6: line breaks become spaces */
  size_t heading_at; /* where the heading being written starts in out */
  char *section;     /* the last heading line written ("## Functions"), or NULL */
  /* the heading line in effect where each open API entry list began */
  char *saved[MAX_ENTRY_DEPTH];
  int depth;
} emitter;

static bool name_is(const xmlNode *n, const char *name) {
  return n->type == XML_ELEMENT_NODE && n->name && strcasecmp((const char *)n->name, name) == 0;
}

static bool name_in(const xmlNode *n, const char *const *names) {
  for (; *names; names++)
    if (name_is(n, *names)) return true;
  return false;
}

static int heading_level(const xmlNode *n) {
  if (n->type != XML_ELEMENT_NODE || !n->name) return 0;
  const char *s = (const char *)n->name;
  if ((s[0] == 'h' || s[0] == 'H') && s[1] >= '1' && s[1] <= '6' && s[2] == '\0') return s[1] - '0';
  return 0;
}

static bool has_ancestor(const xmlNode *n, const char *name) {
  for (n = n->parent; n; n = n->parent)
    if (name_is(n, name)) return true;
  return false;
}

static bool attr_has_word(const xmlNode *n, const char *attr, const char *word) {
  xmlChar *v = xmlGetProp((xmlNode *)n, (const xmlChar *)attr);
  if (!v) return false;
  bool found = false;
  size_t wl = strlen(word);
  for (const char *p = (const char *)v; *p;) {
    while (*p == ' ' || *p == '\t' || *p == '\n') p++;
    size_t k = strcspn(p, " \t\n");
    if (k == wl && strncasecmp(p, word, wl) == 0) found = true;
    p += k;
  }
  xmlFree(v);
  return found;
}

/* Page chrome and non-text content: not descended into. */
static bool is_noise(const xmlNode *n) {
  static const char *const drop[] = {"script", "style", "nav", "footer", "aside", "noscript", "template",
                                     "svg", "iframe", "object", "embed", "canvas", "button", "select",
                                     "textarea", "head", "title", "map", NULL};
  if (name_in(n, drop)) return true;
  /* A site's <header> is its banner; an <article>'s or <main>'s own header
   * holds the page's heading, which we keep. */
  if (name_is(n, "header")) return !has_ancestor(n, "article") && !has_ancestor(n, "main");
  if (attr_has_word(n, "role", "navigation") || attr_has_word(n, "aria-hidden", "true")) return true;
  /* Sphinx/MkDocs permalink anchors ("¶") next to headings. */
  if (name_is(n, "a") && attr_has_word(n, "class", "headerlink")) return true;
  return false;
}

static bool ends_with_nl(const dbuf *b, int n) {
  if (b->len < (size_t)n) return b->len == 0;
  for (int i = 1; i <= n; i++)
    if (b->data[b->len - (size_t)i] != '\n') return false;
  return true;
}

/* Ends the current line; n = 2 leaves a blank line. Nothing at the start. */
static void line_break(emitter *e, int n) {
  e->pending_space = false;
  if (e->out.len == 0) return;
  if (e->in_heading) {
    e->pending_space = true;
    return;
  }
  /* trailing spaces before a line end are noise */
  while (e->out.len && e->out.data[e->out.len - 1] == ' ') e->out.data[--e->out.len] = '\0';
  while (!ends_with_nl(&e->out, n)) dbuf_add(&e->out, "\n", 1);
}

static bool at_line_start(const emitter *e) {
  return e->out.len == 0 || e->out.data[e->out.len - 1] == '\n';
}

/* Appends text with runs of whitespace collapsed to one space. */
static void emit_text(emitter *e, const char *s) {
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
      e->pending_space = true;
      continue;
    }
    /* U+00A0 no-break space */
    if (c == 0xC2 && (unsigned char)s[1] == 0xA0) {
      s++;
      e->pending_space = true;
      continue;
    }
    if (e->pending_space && !at_line_start(e)) dbuf_add(&e->out, " ", 1);
    e->pending_space = false;
    dbuf_add(&e->out, s, 1);
  }
}

static void emit_raw(emitter *e, const char *s, size_t n) {
  dbuf_add(&e->out, s, n);
}

static void emit_pre(emitter *e, xmlNode *n) {
  xmlChar *content = xmlNodeGetContent(n);
  const char *s = content ? (const char *)content : "";
  size_t len = strlen(s);
  /* HTML drops a newline right after <pre>; the parser keeps it. */
  if (len && s[0] == '\n') s++, len--;
  line_break(e, 2);
  emit_raw(e, "```\n", 4);
  emit_raw(e, s, len);
  if (len == 0 || s[len - 1] != '\n') emit_raw(e, "\n", 1);
  emit_raw(e, "```\n\n", 5);
  e->pending_space = false;
  xmlFree(content);
}

static void emit_inline_code(emitter *e, xmlNode *n) {
  xmlChar *content = xmlNodeGetContent(n);
  const char *s = content ? (const char *)content : "";
  if (*s) {
    if (e->pending_space && !at_line_start(e)) dbuf_add(&e->out, " ", 1);
    e->pending_space = false;
    dbuf_add(&e->out, "`", 1);
    for (; *s; s++) dbuf_add(&e->out, (*s == '\n' || *s == '\r') ? " " : s, 1);
    dbuf_add(&e->out, "`", 1);
  }
  xmlFree(content);
}

static const char *const block1[] = {"div", "section", "article", "main", "table", "ul", "ol", "dl", "dt", "dd",
                                     "tr", "figure", "figcaption", "form", "fieldset", "details", "summary",
                                     "address", "center", "caption", "tbody", "thead", "body", NULL};
static const char *const block2[] = {"p", "blockquote", NULL};

/* An API entry's signature, as Sphinx writes it (<dt class="sig ...">
 * "time.sleep(secs)"): it is the heading of the entry's description, so an
 * entry is a section of its own, named by its signature. */
static bool is_signature(const xmlNode *n) {
  return name_is(n, "dt") && attr_has_word(n, "class", "sig");
}

/* A list of API entries: a <dl> whose first item is a signature. */
static bool is_entry_list(const xmlNode *n) {
  if (!name_is(n, "dl")) return false;
  for (const xmlNode *c = n->children; c; c = c->next)
    if (c->type == XML_ELEMENT_NODE) return is_signature(c);
  return false;
}

static void heading_begin(emitter *e, int level) {
  line_break(e, 2);
  e->heading_at = e->out.len;
  static const char hashes[] = "######";
  emit_raw(e, hashes, (size_t)level);
  emit_raw(e, " ", 1);
  e->in_heading++;
}

static void heading_end(emitter *e) {
  if (e->in_heading > 0) e->in_heading--;
  if (!e->in_heading && e->heading_at < e->out.len) {
    free(e->section);
    e->section = xstrndup(e->out.data + e->heading_at, e->out.len - e->heading_at);
  }
  line_break(e, 2);
}

/* Called when the walk enters an element; returns false to skip its subtree. */
static bool enter(emitter *e, xmlNode *n) {
  int h = heading_level(n);
  if (h) {
    heading_begin(e, h);
    return true;
  }
  if (is_signature(n)) {
    heading_begin(e, 6);
    return true;
  }
  if (is_entry_list(n)) {
    if (e->depth < MAX_ENTRY_DEPTH) e->saved[e->depth] = e->section ? xstrdup(e->section) : NULL;
    e->depth++;
  }
  if (name_is(n, "pre")) {
    emit_pre(e, n);
    return false;
  }
  if (name_is(n, "code") || name_is(n, "kbd") || name_is(n, "samp")) {
    emit_inline_code(e, n);
    return false;
  }
  if (name_is(n, "br")) {
    line_break(e, 1);
    return false;
  }
  if (name_is(n, "hr")) {
    line_break(e, 2);
    return false;
  }
  if (name_is(n, "li")) {
    line_break(e, 1);
    emit_raw(e, "- ", 2);
    return true;
  }
  if (name_is(n, "td") || name_is(n, "th")) {
    e->pending_space = true;
    return true;
  }
  if (name_in(n, block2)) line_break(e, 2);
  else if (name_in(n, block1)) line_break(e, 1);
  return true;
}

static void leave(emitter *e, xmlNode *n) {
  if (heading_level(n) || is_signature(n)) {
    heading_end(e);
  } else if (is_entry_list(n) && e->depth > 0) {
    /* the text after the entries belongs to the section that holds them:
     * its heading again (an empty section is dropped when chunking) */
    line_break(e, 1);
    if (--e->depth < MAX_ENTRY_DEPTH) {
      char *back = e->saved[e->depth];
      e->saved[e->depth] = NULL;
      if (back && !e->in_heading && (!e->section || strcmp(back, e->section) != 0)) {
        line_break(e, 2);
        emit_raw(e, back, strlen(back));
        line_break(e, 2);
        free(e->section);
        e->section = back;
      } else {
        free(back);
      }
    }
  } else if (name_in(n, block2)) {
    line_break(e, 2);
  } else if (name_in(n, block1) || name_is(n, "li")) {
    line_break(e, 1);
  }
}

/* Walks the tree without recursion (input nesting is the peer's choice). */
static void walk_text(emitter *e, xmlNode *root) {
  xmlNode *n = root;
  while (n) {
    bool descend = false;
    if (n->type == XML_ELEMENT_NODE) {
      if (!is_noise(n)) descend = enter(e, n);
    } else if (n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE) {
      if (n->content) emit_text(e, (const char *)n->content);
    }
    if (descend && n->children) {
      n = n->children;
      continue;
    }
    if (descend) leave(e, n);
    /* climb until a node has a next sibling */
    while (n && n != root && !n->next) {
      n = n->parent;
      if (n && n->type == XML_ELEMENT_NODE) leave(e, n);
    }
    if (!n || n == root) break;
    n = n->next;
  }
}

static char *collapsed_content(xmlNode *n) {
  xmlChar *c = xmlNodeGetContent(n);
  if (!c) return NULL;
  emitter e = {0};
  dbuf_init(&e.out, 0);
  emit_text(&e, (const char *)c);
  xmlFree(c);
  char *s = dbuf_take(&e.out);
  if (!*s) {
    free(s);
    return NULL;
  }
  return s;
}

/* First element named `name` in document order, or NULL. */
static xmlNode *find_first(xmlNode *root, const char *name) {
  xmlNode *n = root;
  while (n) {
    if (name_is(n, name)) return n;
    if (n->children && n->type == XML_ELEMENT_NODE) {
      n = n->children;
      continue;
    }
    while (n && n != root && !n->next) n = n->parent;
    if (!n || n == root) break;
    n = n->next;
  }
  return NULL;
}

/* Every <a href> in the document, chrome included: a site's navigation is
 * how the crawl finds its pages even though its text is dropped. */
static void collect_links(docs_html *out, xmlNode *root) {
  size_t cap = 0;
  xmlNode *n = root;
  while (n) {
    if (name_is(n, "a") && out->n_links < MAX_LINKS) {
      xmlChar *href = xmlGetProp(n, (const xmlChar *)"href");
      if (href && *href && href[0] != '#') {
        if (out->n_links == cap) {
          cap = cap ? cap * 2 : 32;
          out->links = xrealloc(out->links, cap * sizeof *out->links);
        }
        out->links[out->n_links++] = xstrdup((const char *)href);
      }
      xmlFree(href);
    }
    if (n->children && n->type == XML_ELEMENT_NODE) {
      n = n->children;
      continue;
    }
    while (n && n != root && !n->next) n = n->parent;
    if (!n || n == root) break;
    n = n->next;
  }
}

/* The href of the first <link rel="canonical">: the URL the page says is
 * its own, which its index, print or mirror variants share. */
static char *find_canonical(xmlNode *root) {
  xmlNode *n = root;
  char *out = NULL;
  while (n && !out) {
    if (name_is(n, "link")) {
      xmlChar *rel = xmlGetProp(n, (const xmlChar *)"rel");
      if (rel && !strcasecmp((const char *)rel, "canonical")) {
        xmlChar *href = xmlGetProp(n, (const xmlChar *)"href");
        if (href && *href) out = xstrdup((const char *)href);
        xmlFree(href);
      }
      xmlFree(rel);
    }
    /* <link> belongs in the head */
    if (n->children && n->type == XML_ELEMENT_NODE && !name_is(n, "body")) {
      n = n->children;
      continue;
    }
    while (n && n != root && !n->next) n = n->parent;
    if (!n || n == root) break;
    n = n->next;
  }
  return out;
}

static void utf8_fix(char *s, size_t len);

int docs_html_extract(const char *html, size_t len, docs_html *out) {
  memset(out, 0, sizeof *out);
  static bool inited;
  if (!inited) {
    xmlInitParser();
    inited = true;
  }
  if (len > (size_t)INT32_MAX) len = INT32_MAX;
  htmlDocPtr doc = htmlReadMemory(len ? html : " ", len ? (int)len : 1, NULL, "UTF-8",
                                  HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING | HTML_PARSE_NONET |
                                      HTML_PARSE_RECOVER | HTML_PARSE_COMPACT);
  emitter e = {0};
  dbuf_init(&e.out, 0);
  if (doc) {
    xmlNode *root = xmlDocGetRootElement(doc);
    if (root) {
      xmlNode *t = find_first(root, "title");
      if (t) out->title = collapsed_content(t);
      if (!out->title) {
        xmlNode *h1 = find_first(root, "h1");
        if (h1) out->title = collapsed_content(h1);
      }
      collect_links(out, root);
      out->canonical = find_canonical(root);
      walk_text(&e, root);
    }
    xmlFreeDoc(doc);
  }
  free(e.section);
  for (int i = 0; i < e.depth && i < MAX_ENTRY_DEPTH; i++) free(e.saved[i]);
  while (e.out.len && (e.out.data[e.out.len - 1] == '\n' || e.out.data[e.out.len - 1] == ' '))
    e.out.data[--e.out.len] = '\0';
  out->text_len = e.out.len;
  out->text = dbuf_take(&e.out);
  utf8_fix(out->text, out->text_len);
  if (out->title) utf8_fix(out->title, strlen(out->title));
  return 0;
}

void docs_html_close(docs_html *self) {
  if (!self) return;
  free(self->title);
  free(self->text);
  free(self->canonical);
  for (size_t i = 0; i < self->n_links; i++) free(self->links[i]);
  free(self->links);
  memset(self, 0, sizeof *self);
}

static void utf8_fix(char *s, size_t len) {
  char *c = docs_utf8_clean(s, len);
  memcpy(s, c, len);
  free(c);
}
