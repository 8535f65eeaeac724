-- Scenarios for the Crucible Neovim plugin, one per behaviour a Neovim user
-- meets (issue 14), each in its own headless nvim against the real server
-- and the fake LLM. Run by tests/integration/test_nvim_features.py with
-- CRUCIBLE_BIN, CRUCIBLE_TEST_DIR, CRUCIBLE_NVIM_SCENARIO (the name below)
-- and the fake LLM in the environment. Prints "ok <what>" lines to stderr,
-- "done" at the end; exits non-zero on the first failure, after writing the
-- panels to CRUCIBLE_TEST_DIR/panels.txt for the reader of a failed run.

local dir = assert(os.getenv('CRUCIBLE_TEST_DIR'), 'CRUCIBLE_TEST_DIR is not set')
local bin = assert(os.getenv('CRUCIBLE_BIN'), 'CRUCIBLE_BIN is not set')
local scenario = assert(os.getenv('CRUCIBLE_NVIM_SCENARIO'), 'CRUCIBLE_NVIM_SCENARIO is not set')

local function log(msg)
  if scenario ~= 'screen' then -- there stderr is the terminal
    io.stderr:write(msg .. '\n')
  end
end

-- every vim.notify message, in order
local notes = {}
local real_notify = vim.notify
vim.notify = function(msg, level, o)
  table.insert(notes, msg)
  log('notify: ' .. tostring(msg))
  return real_notify(msg, level, o)
end

local function dump_panels()
  local out = {}
  for _, b in ipairs(vim.api.nvim_list_bufs()) do
    local name = vim.api.nvim_buf_get_name(b)
    if name:match('^crucible://') then
      table.insert(out, '--- ' .. name)
      vim.list_extend(out, vim.api.nvim_buf_get_lines(b, 0, -1, false))
    end
  end
  vim.fn.writefile(out, dir .. '/panels.txt')
end

local function fail(msg)
  log('FAIL ' .. msg)
  pcall(dump_panels)
  vim.cmd('cquit 1')
end

local function check(cond, msg)
  if not cond then
    fail(msg)
    error('stop')
  end
end

local function wait_for(what, timeout, cond)
  check(vim.wait(timeout, cond, 20), 'timed out waiting for ' .. what)
end

local function lines(buf)
  return vim.api.nvim_buf_get_lines(buf, 0, -1, false)
end

local function find_line(ls, pattern, plain)
  for i, l in ipairs(ls) do
    if l:find(pattern, 1, plain) then
      return i
    end
  end
end

local function count_lines(ls, pattern, plain)
  local n = 0
  for _, l in ipairs(ls) do
    if l:find(pattern, 1, plain) then
      n = n + 1
    end
  end
  return n
end

local function panel(name)
  for _, b in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_get_name(b) == name then
      return b
    end
  end
end

local function panel_text(name)
  local b = panel(name)
  return b and table.concat(lines(b), '\n') or ''
end

local function noted(pattern)
  for _, n in ipairs(notes) do
    if tostring(n):find(pattern, 1, true) then
      return n
    end
  end
end

local function runtime_diags(buf)
  local out = {}
  for _, d in ipairs(vim.diagnostic.get(buf)) do
    if d.code == 'runtime' then
      table.insert(out, d)
    end
  end
  return out
end

local crucible = require('crucible')

local function setup(opts)
  vim.cmd('filetype on')
  opts = opts or {}
  opts.cmd = { bin, 'serve' }
  crucible.setup(opts)
end

-- Opens dir/name holding text; waits until the server knows it.
local function open(name, text)
  local path = dir .. '/' .. name
  vim.fn.writefile(vim.split(text, '\n', true), path)
  vim.cmd('edit ' .. vim.fn.fnameescape(path))
  local buf = vim.api.nvim_get_current_buf()
  return buf
end

-- The initialized crucible client attached to buf, if any.
local function client_of(buf)
  local all = vim.lsp.get_clients and vim.lsp.get_clients({ bufnr = buf }) or vim.lsp.buf_get_clients(buf)
  for _, c in pairs(all) do
    if c.name == 'crucible' and c.initialized then
      return c
    end
  end
end

local function wait_attached(buf)
  wait_for('the buffer to be attached', 10000, function()
    return client_of(buf) ~= nil
  end)
end

-- The task started by fn (crucible.last changes), or a failure.
local function started(what, fn)
  local before = crucible.last
  fn()
  wait_for(what, 10000, function()
    return crucible.last ~= nil and crucible.last ~= before
  end)
  return crucible.last
end

local function wait_done(t, what, timeout)
  wait_for(what, timeout or 30000, function()
    return t.done
  end)
end

-- Runs the code action whose title contains `title` through
-- vim.lsp.buf.code_action(), as a user picking it from the menu.
local function code_action(title)
  local picked = false
  local real_select = vim.ui.select
  vim.ui.select = function(items, o, on_choice)
    vim.ui.select = real_select
    for _, it in ipairs(items) do
      local a = it[2] or it.action
      if a and a.title:find(title, 1, true) then
        picked = true
        return on_choice(it)
      end
    end
    on_choice(nil)
  end
  vim.lsp.buf.code_action()
  wait_for('the code action "' .. title .. '" to be offered', 10000, function()
    return picked
  end)
end

local S = {}

-- "fix this error" and "run this file" open a panel and stream; the error
-- marker stays while the file still fails.
function S.code_actions()
  setup()
  local buf = open('fails.py', "x = {}\nprint('before', flush=True)\nx['missing']\n")
  wait_attached(buf)
  vim.cmd('CrucibleRun')
  wait_done(crucible.last, 'the run')
  wait_for('the runtime diagnostic', 10000, function()
    return #runtime_diags(buf) > 0
  end)
  vim.api.nvim_win_set_cursor(0, { 3, 0 })
  local t = started('an ask started by "fix this error"', function()
    code_action('fix this error')
  end)
  check(t.kind == 'ask', 'the code action started a ' .. t.kind)
  wait_for('the answer streaming into the ask panel', 10000, function()
    return panel_text('crucible://ask'):find("print('the answer is', 6 * 7)", 1, true) ~= nil
  end)
  wait_done(t, 'the fix')
  local ask = lines(panel('crucible://ask'))
  check(find_line(ask, 'Question: This code fails with', true), 'the question is not in the panel')
  check(find_line(ask, '══ passed', true), 'no result in the panel')
  log('ok "fix this error" opened the ask panel, streamed and finished')
  vim.wait(1000)
  local d = runtime_diags(buf)
  check(#d == 1 and d[1].lnum == 2, ('the file still fails, yet its error marker is gone (%d markers)'):format(#d))
  log('ok the error marker stays on line 3 while the file still fails')
  t = started('a run started by "run this file"', function()
    code_action('run this file')
  end)
  check(t.kind == 'run', 'the code action started a ' .. t.kind)
  wait_done(t, 'the run')
  local run = lines(panel('crucible://run'))
  check(find_line(run, 'before', true) and find_line(run, '── error (exit 1)', true), 'the run panel lacks output or result')
  log('ok "run this file" streamed into the run panel')
end

-- :CrucibleCancel cancels runs and asks; they finish as cancelled and are
-- not counted again.
function S.cancel()
  setup()
  local buf = open('sleepy.py', "import time\nprint('started', flush=True)\ntime.sleep(30)\n")
  wait_attached(buf)
  local t = started('the run', function()
    vim.cmd('CrucibleRun')
  end)
  wait_for('the program to start', 15000, function()
    return t.buf and table.concat(lines(t.buf), '\n'):find('started', 1, true) ~= nil
  end)
  local t0 = vim.loop.now()
  vim.cmd('CrucibleCancel')
  check(noted('cancelling 1 task(s)'), 'cancel did not count the run: ' .. tostring(notes[#notes]))
  wait_done(t, 'the cancelled run to finish', 5000)
  check(t.cancelled, 'the run ended, but not as cancelled: ' .. vim.inspect(t.err or t.result))
  check(vim.loop.now() - t0 < 5000, 'the run went on after the cancel')
  local run = lines(t.buf)
  check(run[#run] == '── cancelled' or run[#run - 1] == '── cancelled', 'the run panel does not say cancelled')
  log('ok the run was cancelled and its panel says so')
  notes = {}
  vim.cmd('CrucibleCancel')
  check(noted('cancelling 0 task(s)'), 'a finished task was counted again: ' .. tostring(notes[#notes]))
  log('ok a second cancel counts nothing')
  t = started('the ask', function()
    vim.cmd('CrucibleAsk wait forever')
  end)
  wait_for('the ask to be generating', 10000, function()
    return t.buf and table.concat(lines(t.buf), '\n'):find('── generating', 1, true) ~= nil
  end)
  notes = {}
  vim.cmd('CrucibleCancel')
  check(noted('cancelling 1 task(s)'), 'cancel did not count the ask')
  wait_done(t, 'the cancelled ask to finish', 5000)
  check(t.cancelled, 'the ask ended, but not as cancelled')
  check(panel_text('crucible://ask'):find('── cancelled', 1, true), 'the ask panel does not say cancelled')
  log('ok the ask was cancelled and its panel says so')
end

-- One "── reflection" header per reflection; the answer shown as code while
-- it is generated, not as raw JSON.
function S.streaming()
  setup()
  local buf = open('s.py', '# here\n')
  wait_attached(buf)
  local t = started('the ask', function()
    vim.cmd('CrucibleAsk greet someone')
  end)
  local seen_streaming = false
  wait_for('the code as it is generated', 30000, function()
    local p = panel('crucible://ask')
    if p and not t.done and find_line(lines(p), '^def greet%(name%):$') then
      seen_streaming = true
    end
    return seen_streaming or t.done
  end)
  check(seen_streaming, 'the code never showed as code while it was generated')
  wait_done(t, 'the ask')
  local ask = lines(panel('crucible://ask'))
  check(t.result.outcome == 'passed' and t.result.iterations == 2, 'unexpected result ' .. vim.inspect(t.result))
  local n = count_lines(ask, '── reflection', true)
  check(n == 1, ('%d reflection headers for one reflection'):format(n))
  check(find_line(ask, 'The first try raised ValueError because the name was empty.', true),
    'the reflection is not one piece of text')
  check(not find_line(ask, '"code"', true) and not find_line(ask, '\\n', true), 'raw JSON in the panel')
  check(find_line(ask, 'Description: Greets someone.', true), 'no description')
  log('ok one reflection header, the answer rendered as code while generated')
end

-- :CrucibleRun without a range runs the whole buffer, attached or not;
-- filetypes Crucible does not run are refused.
function S.run_buffer()
  setup({ filetypes = { 'javascript' } }) -- python buffers stay unattached
  local buf = open('plain.py', "print('one')\nprint('two')\nprint('three')\n")
  check(vim.bo.filetype == 'python', 'filetype ' .. vim.bo.filetype)
  vim.api.nvim_win_set_cursor(0, { 2, 0 })
  local t = started('the run', function()
    vim.cmd('CrucibleRun')
  end)
  wait_done(t, 'the run')
  check(t.result and t.result.stdout == 'one\ntwo\nthree\n', 'not the whole buffer ran: ' .. vim.inspect(t.err or t.result.stdout))
  log('ok the whole unattached buffer ran')
  open('x.lua', 'print("hi from lua")\n')
  check(vim.bo.filetype == 'lua', 'filetype ' .. vim.bo.filetype)
  local before = crucible.last
  notes = {}
  pcall(vim.cmd, 'CrucibleRun') -- the refusal is an error message
  vim.wait(300)
  check(crucible.last == before, 'a lua buffer was run')
  check(noted("filetype 'lua'"), 'no clear refusal for a lua buffer')
  log('ok a lua buffer is refused: ' .. noted("filetype 'lua'"))
end

-- A failing range ask does not mark the user's lines with the generated
-- program's error.
function S.range_ask()
  setup({ settings = { agent = { maxIterations = 1 } } })
  local buf = open('ok.py', 'def add(a, b):\n    return a + b\n\nprint(add(1, 2))\n')
  wait_attached(buf)
  local t = started('the ask', function()
    vim.cmd('3,4CrucibleAsk make it print more')
  end)
  wait_done(t, 'the ask')
  check(t.result and t.result.outcome == 'failed', 'expected a failed ask: ' .. vim.inspect(t.err or t.result.outcome))
  vim.wait(1000)
  local d = runtime_diags(buf)
  check(#d == 0, ('the generated program\'s error marks the user\'s line %d: %s'):format(d[1] and d[1].lnum + 1 or 0,
    d[1] and d[1].message or ''))
  log('ok the user\'s file carries no marker from the generated program')
end

-- A range run includes the file's imports.
function S.range_imports()
  setup()
  local buf = open('imp.py', 'import math\n\nprint(round(math.pi, 2))\nmath.nope()\n')
  wait_attached(buf)
  local t = started('the run', function()
    vim.cmd('3CrucibleRun')
  end)
  wait_done(t, 'the run')
  check(t.result and t.result.outcome == 'ok' and t.result.stdout == '3.14\n', 'range run: ' .. vim.inspect(t.err or t.result))
  check(panel_text('crucible://run'):find("with the file's imports (line 1)", 1, true), 'the panel does not say the imports were added')
  log('ok a range run included the file\'s import')
  t = started('the run', function()
    vim.cmd('3,4CrucibleRun')
  end)
  wait_done(t, 'the run')
  check(t.result and t.result.outcome == 'error', 'range run: ' .. vim.inspect(t.err or t.result))
  wait_for('the runtime error on line 4', 5000, function()
    local d = runtime_diags(buf)
    return #d == 1 and d[1].lnum == 3
  end)
  local qf = vim.fn.getqflist()
  check(#qf == 1 and qf[1].lnum == 4 and qf[1].text:find('AttributeError', 1, true), 'quickfix: ' .. vim.inspect(qf))
  log('ok its error is on the file\'s line 4, and in the quickfix list')
  t = started('the third run', function()
    vim.cmd('3CrucibleRun')
  end)
  wait_done(t, 'the third run')
  check(#vim.fn.getqflist() == 0 and #runtime_diags(buf) == 0, 'a passing run left the old errors: ' .. vim.inspect(vim.fn.getqflist()))
  log('ok a passing run clears them')
end

-- A server crash is reported; buffers reconnect.
function S.crash()
  setup()
  local buf = open('live.py', 'x = 1\n')
  wait_attached(buf)
  local c = client_of(buf)
  local old = c.id
  local pid = c.rpc.pid
  check(type(pid) == 'number', 'no server pid')
  vim.loop.kill(pid, 9)
  wait_for('the crash to be reported', 5000, function()
    return noted('the server exited') ~= nil
  end)
  log('ok crash reported: ' .. noted('the server exited'))
  wait_for('the buffer to reconnect', 10000, function()
    local n = client_of(buf)
    return n and n.id ~= old
  end)
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, { 'def f(:', '    pass' })
  wait_for('a syntax diagnostic from the new server', 10000, function()
    for _, d in ipairs(vim.diagnostic.get(buf)) do
      if d.source == 'crucible' then
        return true
      end
    end
  end)
  log('ok the buffer reconnected and has diagnostics again')
end

-- Settings the server refused are shown.
function S.refused_settings()
  setup({ settings = { sandbox = { timeoutMs = 100000000 } } })
  local buf = open('r.py', 'x = 1\n')
  wait_attached(buf)
  wait_for('the refusal to be shown', 5000, function()
    return noted('timeoutMs') ~= nil
  end)
  log('ok refusal shown: ' .. noted('timeoutMs'))
end

-- Two asks at once get separate panels.
function S.two_asks()
  setup()
  local buf = open('two.py', '# two\n')
  wait_attached(buf)
  local t1 = started('the first ask', function()
    vim.cmd('CrucibleAsk first question')
  end)
  local t2 = started('the second ask', function()
    vim.cmd('CrucibleAsk second question')
  end)
  wait_done(t1, 'the first ask')
  wait_done(t2, 'the second ask')
  check(t1.buf ~= t2.buf, 'both asks share one panel')
  local p1 = table.concat(lines(t1.buf), '\n')
  local p2 = table.concat(lines(t2.buf), '\n')
  check(p1:find('Question: first question', 1, true) and p1:find('══ passed', 1, true)
    and not p1:find('second question', 1, true), 'first panel:\n' .. p1)
  check(p2:find('Question: second question', 1, true) and p2:find('══ passed', 1, true)
    and not p2:find('first question', 1, true), 'second panel:\n' .. p2)
  log('ok two asks, two panels: ' .. vim.api.nvim_buf_get_name(t1.buf) .. ', ' .. vim.api.nvim_buf_get_name(t2.buf))
end

-- :CrucibleDoctor is short, and not ok when the LLM is unreachable.
function S.doctor()
  setup()
  local t = started('doctor', function()
    vim.cmd('CrucibleDoctor')
  end)
  wait_done(t, 'doctor', 60000)
  local d = lines(t.buf)
  check(#d <= 20, ('doctor shows %d lines'):format(#d))
  check(d[1]:find('NOT OK', 1, true) and d[1]:find('LLM', 1, true), 'doctor says: ' .. d[1])
  check(find_line(d, 'UNREACHABLE', true), 'no LLM line')
  log('ok doctor: ' .. d[1] .. (' (%d lines)'):format(#d))
end

-- The ask panel says why a check rejected an answer.
function S.rejected()
  setup()
  local buf = open('rej.py', '# rej\n')
  wait_attached(buf)
  local t = started('the ask', function()
    vim.cmd('CrucibleAsk something')
  end)
  wait_done(t, 'the ask')
  local ask = lines(panel('crucible://ask'))
  local at = find_line(ask, 'attempt 1 failed at the syntax stage', true)
  check(at, 'the panel does not say the check rejected attempt 1')
  check(find_line(ask, 'invalid syntax', true), 'the panel does not say why the check rejected it')
  log('ok the panel says why: ' .. ask[at + 1])
end

-- The "missing" features: notify on finish, insert after seeing, panel
-- reuse with q and :CruciblePanel, stdin, transcript, environment.
function S.extras()
  setup()
  local buf = open('ex.py', "print('hi')\n")
  wait_attached(buf)
  local wins = #vim.api.nvim_list_wins()
  local t = started('the ask', function()
    vim.cmd('CrucibleAsk print the answer')
  end)
  wait_done(t, 'the ask')
  check(noted('passed after 1 attempt(s)'), 'no notification when the ask finished')
  log('ok notified: ' .. noted('passed after 1 attempt(s)'))
  -- insert after seeing it, from the panel
  local p = panel('crucible://ask')
  vim.api.nvim_set_current_win(vim.fn.bufwinid(p))
  vim.cmd('normal i')
  check(lines(buf)[1] == "print('hi')" and lines(buf)[2] == "print('the answer is', 6 * 7)", 'insert: ' .. table.concat(lines(buf), '|'))
  log('ok `i` in the ask panel inserted the answer below the cursor line')
  -- one reusable panel window
  vim.cmd('wincmd p')
  t = started('the run', function()
    vim.cmd('CrucibleRun')
  end)
  wait_done(t, 'the run')
  t = started('the second run', function()
    vim.cmd('CrucibleRun')
  end)
  wait_done(t, 'the second run')
  check(#vim.api.nvim_list_wins() == wins + 1, ('%d windows for %d before'):format(#vim.api.nvim_list_wins(), wins))
  check(#lines(panel('crucible://run')) < 8, 'the run panel was not reused cleanly')
  vim.api.nvim_set_current_win(vim.fn.bufwinid(panel('crucible://run')))
  vim.cmd('normal q')
  check(#vim.api.nvim_list_wins() == wins, '`q` did not close the panel')
  vim.cmd('CruciblePanel ask')
  check(vim.fn.bufwinid(panel('crucible://ask')) ~= -1, ':CruciblePanel ask did not show it')
  log('ok one panel window, reused; q closes it; :CruciblePanel reopens')
  -- stdin
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, { 'print(input()[::-1])' })
  t = crucible.run({ stdin = 'olleh\n' })
  wait_done(t, 'the stdin run')
  check(t.result.stdout == 'hello\n', 'stdin run: ' .. vim.inspect(t.result.stdout))
  local real_input = vim.ui.input
  vim.ui.input = function(_, on_confirm)
    vim.ui.input = real_input
    on_confirm('dlrow')
  end
  t = started('the :CrucibleRun! run', function()
    vim.cmd('CrucibleRun!')
  end)
  wait_done(t, 'the :CrucibleRun! run')
  check(t.result.stdout == 'world\n', ':CrucibleRun! stdin: ' .. vim.inspect(t.result.stdout))
  log('ok stdin reached the program (API and :CrucibleRun!)')
  -- transcript
  t = started('the transcript', function()
    vim.cmd('CrucibleTranscript')
  end)
  wait_done(t, 'the transcript')
  local tr = table.concat(lines(panel('crucible://transcript')), '\n')
  check(tr:find('Question: print the answer', 1, true) and tr:find('── attempt 1', 1, true), 'transcript:\n' .. tr)
  log('ok transcript shown')
  -- environment
  vim.cmd('CrucibleEnv workspace')
  check(crucible.config.environment == 'workspace', 'environment not chosen')
  vim.cmd('CrucibleEnv system')
  t = crucible.run({})
  wait_done(t, 'the run in the system environment')
  check(panel_text('crucible://run'):find('environment system', 1, true), 'the run does not say its environment')
  log('ok environment chosen and shown')
end

-- :CrucibleEnv packages: the run builds the environment (its install lines
-- stream into the run panel) and the summary names the environment.
function S.environment()
  setup()
  local buf = open('pkg.py', 'import tinypkg\nprint(tinypkg.answer())\n')
  wait_attached(buf)
  vim.cmd('CrucibleEnv packages tinypkg')
  check(noted('environment: packages (tinypkg)'), 'the chosen environment was not confirmed')
  local t = started('the run', function()
    vim.cmd('CrucibleRun')
  end)
  wait_done(t, 'the run in a packages environment', 120000)
  check(t.result and t.result.stdout == '42\n', 'run: ' .. vim.inspect(t.err or t.result))
  local run = lines(t.buf)
  check(find_line(run, '^── installing'), 'no install progress in the run panel')
  check(find_line(run, 'environment packages (tinypkg)', true), 'the summary does not name the environment')
  log('ok the packages environment was built with progress shown, and named: ' .. run[find_line(run, '^── ok')])
  t = started('the environments list', function()
    vim.cmd('CrucibleEnv')
  end)
  wait_done(t, 'the environments list')
  local e = table.concat(lines(t.buf), '\n')
  check(e:find('environment in use: packages (tinypkg)', 1, true) and e:find('tinypkg', 1, true), 'environments:\n' .. e)
  log('ok :CrucibleEnv lists it')
end

-- For the screen capture (a real terminal): an ask and a run on a small
-- file, then "screen-ready" in the test directory; the test quits nvim.
function S.screen()
  -- no notifications: pyte draws nvim's scrolled message lines over the windows
  setup({ notify = false })
  local buf = open('demo.py', table.concat({
    'import math',
    '',
    'def area(r):',
    '    return math.pi * r ** 2',
    '',
    "print('area', round(area(2), 2))",
    "print({}['missing'])",
  }, '\n'))
  wait_attached(buf)
  vim.cmd('CrucibleRun')
  local run = crucible.last
  local t
  local timer = vim.loop.new_timer()
  timer:start(100, 100, vim.schedule_wrap(function()
    if run.done and not t then
      vim.api.nvim_win_set_cursor(0, { 6, 0 })
      vim.cmd('CrucibleAsk print the answer')
      t = crucible.last
    elseif t and t.done and #vim.diagnostic.get(buf) > 0 then
      timer:stop()
      vim.cmd('redraw!')
      vim.defer_fn(function()
        vim.fn.writefile({ 'ready' }, dir .. '/screen-ready')
      end, 600)
    end
  end))
  return 'keep'
end

local ok, err = xpcall(S[scenario] or function()
  error('no scenario ' .. scenario)
end, debug.traceback)
if not ok then
  fail(tostring(err))
end
pcall(dump_panels)
log('done')
if err ~= 'keep' then
  vim.cmd('qall!')
end
