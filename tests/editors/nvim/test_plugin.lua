-- Drives the Crucible Neovim plugin against the real server in a headless
-- nvim: diagnostics, incremental changes, :CrucibleRun, :CrucibleAsk.
-- Run by tests/integration/test_editors.py with CRUCIBLE_BIN (the server),
-- CRUCIBLE_TEST_DIR (a scratch directory) and the fake LLM in the environment.
-- Prints "ok <name>" per check to stderr; exits non-zero on the first failure.

local dir = assert(os.getenv('CRUCIBLE_TEST_DIR'), 'CRUCIBLE_TEST_DIR is not set')
local bin = assert(os.getenv('CRUCIBLE_BIN'), 'CRUCIBLE_BIN is not set')

local function log(msg)
  io.stderr:write(msg .. '\n')
end

local function fail(msg)
  log('FAIL ' .. msg)
  vim.cmd('cquit 1')
end

local function wait_for(what, timeout, cond)
  if not vim.wait(timeout, cond, 20) then
    fail('timed out waiting for ' .. what)
  end
end

local function buf_lines(buf)
  return vim.api.nvim_buf_get_lines(buf, 0, -1, false)
end

local function find_line(lines, pattern, plain)
  for i, l in ipairs(lines) do
    if l:find(pattern, 1, plain) then
      return i
    end
  end
end

local function panel(name)
  for _, b in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_get_name(b) == name then
      return b
    end
  end
  fail('no buffer ' .. name)
end

local function crucible_diags(buf)
  local out = {}
  for _, d in ipairs(vim.diagnostic.get(buf)) do
    if d.source == 'crucible' or d.source == 'crucible-run' then
      table.insert(out, d)
    end
  end
  return out
end

local function main()
  vim.cmd('filetype on')
  local crucible = require('crucible')
  crucible.setup({ cmd = { bin, 'serve' } })

  -- 1. a syntax error is reported on its line, through the built-in diagnostics
  local path = dir .. '/broken.py'
  vim.cmd('edit ' .. vim.fn.fnameescape(path))
  local buf = vim.api.nvim_get_current_buf()
  if vim.bo.filetype ~= 'python' then
    fail('filetype is ' .. vim.bo.filetype)
  end
  wait_for('a syntax diagnostic', 10000, function()
    return #crucible_diags(buf) > 0
  end)
  local d = crucible_diags(buf)[1]
  if d.lnum ~= 1 then
    fail(('syntax diagnostic on line %d, expected 1 (0-based): %s'):format(d.lnum, d.message))
  end
  log('ok syntax diagnostic on line 2: ' .. d.message)

  -- 2. an incremental edit that fixes it clears it
  local client = vim.lsp.get_client_by_id(crucible.start())
  local sync = client.server_capabilities.textDocumentSync
  if type(sync) ~= 'table' or sync.change ~= 2 then
    fail('the server did not offer incremental sync')
  end
  vim.api.nvim_buf_set_text(buf, 1, 6, 1, 6, { ')' })
  wait_for('the diagnostic to clear', 10000, function()
    return #crucible_diags(buf) == 0
  end)
  log('ok fixed by an incremental change: ' .. vim.api.nvim_buf_get_lines(buf, 1, 2, false)[1])

  -- 3. :CrucibleRun streams output into crucible://run, then the result;
  -- the runtime error becomes a diagnostic on the line that raised it
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, {
    'import sys',
    "print('out from nvim', flush=True)",
    "sys.stderr.write('to stderr\\n')",
    'x = {}',
    "x['missing']",
  })
  vim.cmd('CrucibleRun')
  local t = crucible.last
  wait_for('the run result', 20000, function()
    return t.done
  end)
  if t.err then
    fail('run failed: ' .. vim.inspect(t.err))
  end
  if t.result.outcome ~= 'error' or t.result.exitCode ~= 1 then
    fail('unexpected run result: ' .. vim.inspect(t.result))
  end
  local out = buf_lines(panel('crucible://run'))
  local at_out, at_err = find_line(out, 'out from nvim', true), find_line(out, 'to stderr', true)
  local at_end = find_line(out, '── error (exit 1)', true)
  if not (at_out and at_err and at_end and at_out < at_end and at_err < at_end) then
    fail('output pane is not output then result:\n' .. table.concat(out, '\n'))
  end
  wait_for('the runtime diagnostic', 10000, function()
    for _, x in ipairs(crucible_diags(buf)) do
      if x.code == 'runtime' then
        return true
      end
    end
  end)
  for _, x in ipairs(crucible_diags(buf)) do
    if x.code == 'runtime' and (x.lnum ~= 4 or not x.message:find('KeyError', 1, true)) then
      fail(('runtime diagnostic on line %d: %s'):format(x.lnum, x.message))
    end
  end
  log('ok run streamed output and put the KeyError on line 5')

  -- 4. a range run sends only the selected lines
  vim.cmd('2,2CrucibleRun')
  t = crucible.last
  wait_for('the range run', 20000, function()
    return t.done
  end)
  if t.err or t.result.outcome ~= 'ok' or t.result.stdout ~= 'out from nvim\n' then
    fail('range run: ' .. vim.inspect(t.err or t.result))
  end
  log('ok range run printed only line 2')

  -- 5. :CrucibleAsk! streams the answer into crucible://ask and inserts the code
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, { '# answer below' })
  vim.api.nvim_win_set_cursor(0, { 1, 0 })
  vim.cmd('CrucibleAsk! print the answer')
  t = crucible.last
  wait_for('the ask result', 30000, function()
    return t.done
  end)
  if t.err or t.result.outcome ~= 'passed' then
    fail('ask: ' .. vim.inspect(t.err or t.result))
  end
  local ask = buf_lines(panel('crucible://ask'))
  local at_gen = find_line(ask, '── generating', true)
  local at_run = find_line(ask, '── running', true)
  local at_code = find_line(ask, "print('the answer is', 6 * 7)", true)
  local at_desc = find_line(ask, '══ passed', true) -- the result, after the description streamed
  at_desc = at_desc and ask[at_desc + 1] == 'Description: Prints the answer.' and at_desc
  local at_stdout = find_line(ask, 'the answer is 42', true)
  if not (at_gen and at_run and at_code and at_desc and at_stdout and at_gen < at_run and at_run < at_desc) then
    fail('ask pane:\n' .. table.concat(ask, '\n'))
  end
  local src = buf_lines(buf)
  if src[1] ~= '# answer below' or not find_line(src, "print('the answer is', 6 * 7)", true) then
    fail('code not inserted below the cursor:\n' .. table.concat(src, '\n'))
  end
  log('ok ask streamed phases and tokens, showed the result and inserted the code')

  -- 6. history lists the ask
  t = crucible.history(5)
  wait_for('history', 10000, function()
    return t.done
  end)
  if t.err or #t.result.tasks < 1 then
    fail('history: ' .. vim.inspect(t.err or t.result))
  end
  log('ok history')

  -- the panes, for a reader of a failed run
  vim.fn.writefile(buf_lines(panel('crucible://ask')), dir .. '/ask-pane.txt')
  vim.fn.writefile(buf_lines(panel('crucible://run')), dir .. '/output-pane.txt')
end

local ok, err = xpcall(main, debug.traceback)
if not ok then
  fail(tostring(err))
end
log('done')
vim.cmd('qall!')
