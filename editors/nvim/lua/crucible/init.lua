-- Neovim client for Crucible: runs `crucible serve` as a language server,
-- attaches it to code buffers, and provides the :Crucible* commands.
-- Works on Neovim 0.7 (vim.lsp.start_client) and on later releases.
local panel = require('crucible.panel')
local render = require('crucible.render')

local M = {}

local defaults = {
  cmd = { 'crucible', 'serve' },
  cmd_env = nil,
  filetypes = { 'python', 'javascript', 'sh' },
  -- {llm = {...}, agent = {...}, sandbox = {...}, docs = {...}}: sent as
  -- initializationOptions and again on every setup() call.
  settings = {},
  -- filetype -> Crucible language. Buffers of other filetypes are not run
  -- or checked (an ask from them asks for Python).
  languages = { python = 'python', javascript = 'javascript', sh = 'bash', bash = 'bash' },
  -- vim.notify when a task finishes
  notify = true,
  -- a range run also runs the file's imports that lie outside the range
  run_imports = true,
  -- restart the server when it dies, and attach the buffers again
  restart = true,
  -- the environment runs, checks and asks use (nil: the server's
  -- sandbox.environment setting); see :CrucibleEnv
  environment = nil,
}

M.config = vim.deepcopy(defaults)
-- task id -> {id, kind, buf, done, result, err, cancelled}; what the commands started.
M.tasks = {}
M.last = nil -- the most recent task record
M.last_ask = nil -- the most recent ask

local client_id = nil
local counter = 0
local stopping = false
local restarts = {} -- times of the automatic restarts, to stop after a few
local ns_run = vim.api.nvim_create_namespace('crucible-run')

local has = function(v)
  return vim.fn.has('nvim-' .. v) == 1
end

local function val(x)
  if x == vim.NIL then
    return nil
  end
  return x
end

-- client.request / client:request across versions (0.11 deprecates the dot form)
local function request(c, method, params, cb, bufnr)
  if has('0.11') then
    return c:request(method, params, cb, bufnr)
  end
  return c.request(method, params, cb, bufnr)
end

local function notify_server(c, method, params)
  if has('0.11') then
    return c:notify(method, params)
  end
  return c.notify(method, params)
end

local function notify(msg, level)
  vim.notify('crucible: ' .. msg, level or vim.log.levels.INFO)
end

local function new_task(kind, title)
  counter = counter + 1
  local id = ('nvim-%d-%d'):format(vim.fn.getpid(), counter)
  local t = { id = id, kind = kind, title = title or kind, done = false }
  M.tasks[id] = t
  M.last = t
  return t
end

local function task_of(r)
  local t = r and M.tasks[r.task]
  if t and not t.done then
    return t
  end
end

-- Ends task t once: with err (a cancelled task has code -32800) or with the
-- result. Returns true when there is a result to show.
local function complete(t, err, result)
  if t.done then
    return false
  end
  t.done = true
  t.err = err
  t.result = result
  if err then
    t.cancelled = err.code == -32800
    local what = t.cancelled and 'cancelled' or ('error: ' .. tostring(err.message))
    panel.append_lines(t.buf, { '── ' .. what })
    if M.config.notify and t.kind ~= 'check' then
      notify(('%s %s'):format(t.title, what), t.cancelled and vim.log.levels.WARN or vim.log.levels.ERROR)
    end
    return false
  end
  return true
end

local function finished(t, what, ok)
  if M.config.notify then
    notify(('%s: %s'):format(t.title, what), ok and vim.log.levels.INFO or vim.log.levels.WARN)
  end
end

-- What the task's panel shows at its end: 'tokens' while the answer streams
-- (redrawn as it grows), 'reflection', 'output' or 'lines'.
local function mode(t, m, iteration)
  local same = t.mode == m and t.iteration == iteration
  t.mode, t.iteration = m, iteration
  return same
end

local function first_line(s)
  return (tostring(s or ''):match('^[^\n]*'))
end

local handlers = {
  ['crucible/output'] = function(_, r)
    local t = task_of(r)
    if t then
      mode(t, 'output', r.iteration)
      panel.append(t.buf, r.text)
    end
  end,
  ['crucible/token'] = function(_, r)
    local t = task_of(r)
    if t then
      if not mode(t, 'tokens', r.iteration) then
        t.gen_from = panel.mark(t.buf)
        t.gen_text = ''
      end
      t.gen_text = t.gen_text .. (r.text or '')
      panel.replace_from(t.buf, t.gen_from, render.answer(t.gen_text, t.lang or 'python'))
    end
  end,
  ['crucible/phase'] = function(_, r)
    local t = task_of(r)
    if t then
      mode(t, 'lines', r.iteration)
      local detail = val(r.detail)
      if r.phase == 'finished' then
        return
      end
      local it = ((r.iteration or 0) > 0 and not (detail or ''):find('attempt', 1, true)) and (' (attempt %d)'):format(r.iteration) or ''
      panel.append_lines(t.buf, { ('── %s%s%s'):format(r.phase, detail and (': ' .. detail) or '', it) })
    end
  end,
  ['crucible/reflection'] = function(_, r)
    local t = task_of(r)
    if t then
      if not mode(t, 'reflection', r.iteration) then
        panel.append_lines(t.buf, { ('── reflection (attempt %d):'):format(r.iteration or 0) })
      end
      panel.append(t.buf, r.text)
    end
  end,
  ['crucible/attempt'] = function(_, r)
    local t = task_of(r)
    if not t then
      return
    end
    mode(t, 'lines', r.iteration)
    local run = val(r.run) or {}
    if r.passed then
      panel.append_lines(t.buf, { ('── attempt %d passed (%s)'):format(r.iteration or 0, val(run.outcome) or 'not run') })
      return
    end
    local stage = val(r.failedStage) or val(run.outcome) or 'run'
    local lines = { ('── attempt %d failed at the %s stage'):format(r.iteration or 0, stage) }
    local why = val(r.error)
    if why and why ~= '' then
      local wl = vim.split(why:gsub('%s+$', ''), '\n', { plain = true })
      if #wl > 4 then -- a traceback the panel showed already: its first and last lines
        wl = { wl[1], '…', wl[#wl] }
      end
      for i, l in ipairs(wl) do
        table.insert(lines, (i == 1 and 'Why: ' or '     ') .. l)
      end
    else
      local check = val(r.check) or {}
      for _, d in ipairs(val(check.diagnostics) or {}) do
        table.insert(lines, ('Why: line %d: %s'):format(d.range.start.line + 1, d.message))
      end
    end
    panel.append_lines(t.buf, lines)
  end,
  -- Warnings and errors the server logs (settings it refused, for one) are
  -- shown, not only written to lsp.log.
  ['window/logMessage'] = function(err, r, ctx, cfg)
    if r and r.type and r.type <= 2 then
      vim.schedule(function()
        notify(r.message, r.type == 1 and vim.log.levels.ERROR or vim.log.levels.WARN)
      end)
    end
    return vim.lsp.handlers['window/logMessage'](err, r, ctx, cfg)
  end,
}

local attach_matching

local function on_exit(code, signal, id)
  vim.schedule(function()
    if id and client_id and id ~= client_id then
      return
    end
    client_id = nil
    for _, t in pairs(M.tasks) do
      complete(t, { message = 'the crucible server exited' })
    end
    if stopping or vim.v.exiting ~= vim.NIL or (code == 0 and (signal or 0) == 0) then
      return
    end
    local now = vim.loop.now()
    while restarts[1] and now - restarts[1] > 60000 do
      table.remove(restarts, 1)
    end
    if not M.config.restart or #restarts >= 3 then
      notify(('the server exited (code %d, signal %d); not restarting it: :CrucibleRestart starts it again')
        :format(code or -1, signal or 0), vim.log.levels.ERROR)
      return
    end
    table.insert(restarts, now)
    notify(('the server exited (code %d, signal %d); restarting it'):format(code or -1, signal or 0),
      vim.log.levels.ERROR)
    vim.defer_fn(function()
      if not client_id then
        attach_matching()
      end
    end, 200)
  end)
end

local function run_command(command, ctx)
  local a = (command.arguments or {})[1] or {}
  local bufnr = a.uri and vim.uri_to_bufnr(a.uri) or ctx.bufnr
  local l1, l2 = M.lines_of(a.range)
  M.run({ bufnr = bufnr, range = l1 ~= nil, line1 = l1, line2 = l2 })
end

local function ask_command(command, ctx)
  local a = (command.arguments or {})[1] or {}
  local c = val(a.context) or {}
  local bufnr = c.uri and vim.uri_to_bufnr(c.uri) or ctx.bufnr
  local l1, l2 = M.lines_of(c.range)
  if not l1 and c.uri then
    l1, l2 = 1, vim.api.nvim_buf_line_count(bufnr)
  end
  M.ask(a.question, { bufnr = bufnr, range = l1 ~= nil, line1 = l1, line2 = l2, language = a.language })
end

-- The commands of the server's code actions run here, as the commands do:
-- a panel, streaming, a task that can be cancelled.
local commands = { ['crucible.run'] = run_command, ['crucible.ask'] = ask_command }

--- The whole lines an LSP range covers (1-based, inclusive), or nil.
function M.lines_of(range)
  range = val(range)
  if not range then
    return nil
  end
  local l1 = range.start.line + 1
  local l2 = range['end'].line + ((range['end'].character or 0) > 0 and 1 or 0)
  if l2 < l1 then
    l2 = l1
  end
  return l1, l2
end

local function client_config()
  local settings = M.config.settings
  return {
    name = 'crucible',
    cmd = M.config.cmd,
    cmd_env = M.config.cmd_env,
    root_dir = vim.loop.cwd(),
    init_options = (settings and next(settings)) and settings or nil,
    handlers = handlers,
    commands = commands,
    on_exit = on_exit,
  }
end

--- Starts the client unless it runs already. Returns its id, or nil when
--- the server cannot be started (the reason is shown).
function M.start()
  -- (0.7 counts a client still initializing as stopped: ask for it by id)
  local running = client_id and vim.lsp.get_client_by_id(client_id)
  if running and not (running.is_stopped and running.is_stopped()) then
    return client_id
  end
  stopping = false
  if has('0.11') then
    -- a client that vim.lsp.enable('crucible') started (see setup) is ours
    for _, other in ipairs(vim.lsp.get_clients({ name = 'crucible' })) do
      if not other:is_stopped() then
        client_id = other.id
        return client_id
      end
    end
    client_id = vim.lsp.start(client_config(), { attach = false })
  else
    client_id = vim.lsp.start_client(client_config())
  end
  return client_id
end

--- Stops the client (no restart follows).
function M.stop()
  if client_id then
    stopping = true
    vim.lsp.stop_client(client_id)
  end
end

--- The running client, initialized; nil (reason shown) when there is none.
local function get_client()
  local id = M.start()
  local c = id and vim.lsp.get_client_by_id(id)
  if not c then
    notify('the server is not running (check `cmd` in setup())', vim.log.levels.ERROR)
    return nil
  end
  if not c.initialized then
    vim.wait(5000, function()
      return c.initialized
    end, 10)
  end
  return c
end

--- The running client's id, or nil.
function M.client_id()
  return client_id
end

--- Attaches the client to a buffer (starting the client when needed).
function M.attach(bufnr)
  local id = M.start()
  if id then
    vim.lsp.buf_attach_client(bufnr, id)
  end
end

-- Attaches every loaded buffer of the configured filetypes.
attach_matching = function()
  for _, b in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_is_loaded(b) and vim.tbl_contains(M.config.filetypes, vim.api.nvim_buf_get_option(b, 'filetype')) then
      M.attach(b)
    end
  end
end

--- The Crucible language of a buffer, or nil when its filetype is none of
--- config.languages.
function M.language_of(bufnr)
  return M.config.languages[vim.api.nvim_buf_get_option(bufnr, 'filetype')]
end

local function attached(bufnr)
  return client_id ~= nil and vim.lsp.buf_is_attached(bufnr, client_id)
end

-- An LSP range of whole lines line1..line2 (1-based, inclusive).
local function line_range(line1, line2)
  return { start = { line = line1 - 1, character = 0 }, ['end'] = { line = line2, character = 0 } }
end

local function buffer_text(bufnr, line1, line2)
  return table.concat(vim.api.nvim_buf_get_lines(bufnr, line1 - 1, line2, false), '\n') .. '\n'
end

local function buf_label(bufnr)
  local name = vim.fn.fnamemodify(vim.api.nvim_buf_get_name(bufnr), ':t')
  return name ~= '' and name or ('[buffer %d]'):format(bufnr)
end

local function env_label(e)
  e = val(e)
  if not e then
    return nil
  end
  local s = e.kind or e.id or '?'
  if val(e.requirements) and #e.requirements > 0 then
    s = s .. ' (' .. table.concat(e.requirements, ', ') .. ')'
  end
  return s
end

local function run_summary(r)
  local s = '── ' .. (val(r.outcome) or '?')
  if val(r.exitCode) then
    s = s .. (' (exit %d)'):format(r.exitCode)
  end
  if val(r.signal) then
    s = s .. (' signal %s'):format(tostring(r.signal))
  end
  if val(r.limit) then
    s = s .. (', limit hit: %s'):format(tostring(r.limit))
  end
  s = s .. (' in %d ms, cpu %d ms, %d KiB'):format(val(r.durationMs) or 0, val(r.cpuMs) or 0, val(r.maxRssKb) or 0)
  if r.truncated then
    s = s .. ', output truncated'
  end
  local env = env_label(r.environment)
  if env then
    s = s .. ', environment ' .. env
  end
  return s
end

-- The file's import lines outside line1..line2 (1-based): {lnums, lines}.
-- Python `import x` / `from x import y` (a parenthesised list included) and
-- JavaScript `import ...` / `const x = require(...)` at the top level.
local function outside_imports(bufnr, lang, line1, line2)
  local all = vim.api.nvim_buf_get_lines(bufnr, 0, -1, false)
  local lnums, lines = {}, {}
  local i = 1
  while i <= #all do
    local l = all[i]
    local is_import
    if lang == 'python' then
      is_import = l:match('^import%s') or l:match('^from%s+[%w_.]+%s+import[%s(]')
    elseif lang == 'javascript' then
      is_import = l:match('^import[%s{*]') or l:match('^const%s.-=%s*require%(') or l:match('^var%s.-=%s*require%(')
    end
    local j = i
    if is_import and lang == 'python' and l:find('(', 1, true) and not l:find(')', 1, true) then
      while j < #all and not all[j]:find(')', 1, true) do
        j = j + 1
      end
    end
    if is_import and (j < line1 or i > line2) then
      for k = i, j do
        table.insert(lnums, k)
        table.insert(lines, all[k])
      end
    end
    i = j + 1
  end
  return lnums, lines
end

-- Runtime errors of a run of code taken from bufnr (not from the server's
-- copy of the document): put on the buffer's lines. t.place = {bufnr,
-- line1, lnums}: the code's first len(lnums) lines are the imports from
-- those lines, the rest is the buffer from line1 on.
local function place_diagnostics(t, diags)
  local p = t.place
  if not p or not vim.api.nvim_buf_is_valid(p.bufnr) then
    return
  end
  local out = {}
  for _, d in ipairs(diags or {}) do
    local l = d.range.start.line
    local lnum = l < #p.lnums and (p.lnums[l + 1] - 1) or (p.line1 - 1 + l - #p.lnums)
    table.insert(out, {
      lnum = lnum,
      col = d.range.start.character or 0,
      message = d.message,
      severity = val(d.severity) or vim.diagnostic.severity.ERROR,
      source = 'crucible-run',
      code = val(d.code) or 'runtime',
    })
  end
  vim.diagnostic.set(ns_run, p.bufnr, out)
end

-- Run errors into the quickfix list (when there are any).
local function run_quickfix(t, bufnr)
  local items = {}
  if t.place then
    for _, d in ipairs(vim.diagnostic.get(bufnr, { namespace = ns_run })) do
      table.insert(items, { bufnr = bufnr, lnum = d.lnum + 1, col = d.col + 1, text = d.message, type = 'E' })
    end
  else
    for _, d in ipairs(val(t.result.diagnostics) or {}) do
      table.insert(items, { bufnr = bufnr, lnum = d.range.start.line + 1, col = d.range.start.character + 1,
        text = d.message, type = 'E' })
    end
  end
  local title = vim.fn.getqflist({ title = 0 }).title or ''
  if #items > 0 then
    vim.fn.setqflist({}, ' ', { title = 'crucible ' .. t.title, items = items })
  elseif title:find('^crucible run') then
    vim.fn.setqflist({}, ' ', { title = 'crucible ' .. t.title .. ': no errors', items = {} })
  end
end

--- Runs the buffer, or lines line1..line2 of it when `range` is set, in the
--- sandbox; output streams into crucible://run and runtime errors come back
--- as diagnostics on the buffer and in the quickfix list. opts: bufnr,
--- range, line1, line2, stdin (text given to the program). Buffers whose
--- filetype is not in config.languages are refused. A range run of an
--- attached buffer also runs the file's imports from outside the range
--- (config.run_imports). Returns the task record.
function M.run(opts)
  opts = opts or {}
  local bufnr = opts.bufnr or vim.api.nvim_get_current_buf()
  local lang = M.language_of(bufnr)
  if not lang then
    local ft = vim.api.nvim_buf_get_option(bufnr, 'filetype')
    notify(("cannot run a buffer of filetype '%s': Crucible runs %s (config.languages)"):format(
      ft, table.concat(vim.tbl_keys(M.config.languages), ', ')), vim.log.levels.ERROR)
    return
  end
  local c = get_client()
  if not c then
    return
  end
  local last = vim.api.nvim_buf_line_count(bufnr)
  local line1, line2 = 1, last
  if opts.range then
    line1, line2 = opts.line1 or 1, math.min(opts.line2 or last, last)
  end
  local title = ('run %s%s'):format(buf_label(bufnr), opts.range and (' lines %d-%d'):format(line1, line2) or '')
  local t = new_task('run', title)
  local buf = panel.claim('run', t)
  t.buf = buf
  local params = { task = t.id, stdin = opts.stdin, environment = M.config.environment }
  local header = { '── ' .. title }
  vim.diagnostic.reset(ns_run, bufnr)
  if attached(bufnr) and not opts.range then
    params.uri = vim.uri_from_bufnr(bufnr)
  else
    local lnums, imports = {}, {}
    if opts.range and M.config.run_imports then
      lnums, imports = outside_imports(bufnr, lang, line1, line2)
    end
    if attached(bufnr) and #lnums == 0 then
      params.uri = vim.uri_from_bufnr(bufnr)
      params.range = line_range(line1, line2)
    else
      local code = buffer_text(bufnr, line1, line2)
      if #imports > 0 then
        code = table.concat(imports, '\n') .. '\n' .. code
        local shown = {}
        for _, n in ipairs(lnums) do
          table.insert(shown, tostring(n))
        end
        table.insert(header, ("── with the file's imports (line %s); setup({run_imports = false}) leaves them out")
          :format(table.concat(shown, ', ')))
      end
      params.code = code
      params.language = lang
      t.place = { bufnr = bufnr, line1 = line1, lnums = lnums }
    end
  end
  if opts.stdin then
    table.insert(header, ('── stdin: %d byte(s)'):format(#opts.stdin))
  end
  panel.append_lines(buf, header)
  request(c, 'crucible/run', params, function(err, result)
    if complete(t, err, result) then
      panel.append_lines(buf, { run_summary(result) })
      place_diagnostics(t, val(result.diagnostics))
      run_quickfix(t, bufnr)
      local ok = result.outcome == 'ok'
      finished(t, ok and 'ok' or (result.outcome .. (val(result.exitCode) and (' (exit ' .. result.exitCode .. ')') or '')), ok)
    end
  end, bufnr)
  return t
end

local function answer_lines(t)
  local r = t.result or {}
  local sol = val(r.solution) or {}
  local imports, code = val(sol.imports) or '', val(sol.code) or ''
  return imports ~= '' and (imports .. '\n\n' .. code) or code, code
end

--- Asks Crucible for code. The question, phases, the answer as it is
--- generated, output and reflections go to crucible://ask (a second ask
--- while one is going gets crucible://ask-2), then the description, the code
--- and its run. opts: range/line1/line2 (those lines go along as context,
--- as text: the generated program's errors are not put on them), insert
--- (insert the code if it passed), bufnr, language. Returns the task record.
function M.ask(question, opts)
  opts = opts or {}
  if not question or question == '' then
    notify(':CrucibleAsk needs a question', vim.log.levels.ERROR)
    return
  end
  local src = opts.bufnr or vim.api.nvim_get_current_buf()
  local win = vim.fn.bufwinid(src)
  local row = win ~= -1 and vim.api.nvim_win_get_cursor(win)[1] or (opts.line2 or 1)
  local c = get_client()
  if not c then
    return
  end
  local lang = opts.language or M.language_of(src) or 'python'
  local t = new_task('ask', 'ask "' .. first_line(question):sub(1, 40) .. '"')
  t.lang, t.question, t.src, t.row = lang, question, src, row
  if opts.range then
    t.line1, t.line2 = opts.line1, opts.line2
  end
  local buf = panel.claim('ask', t)
  t.buf = buf
  M.last_ask = t
  local km = { noremap = true, silent = true }
  vim.api.nvim_buf_set_keymap(buf, 'n', 'i', '<cmd>lua require("crucible").insert()<cr>', km)
  vim.api.nvim_buf_set_keymap(buf, 'n', 'r', '<cmd>lua require("crucible").insert({replace = true})<cr>', km)
  local params = { question = question, language = lang, task = t.id, environment = M.config.environment }
  if opts.range then
    params.context = { text = buffer_text(src, opts.line1, opts.line2) }
  end
  local qlines = vim.split(question, '\n', { plain = true })
  qlines[1] = 'Question: ' .. qlines[1]
  if opts.range then
    table.insert(qlines, ('(context: %s lines %d-%d)'):format(buf_label(src), opts.line1, opts.line2))
  end
  panel.append_lines(buf, qlines)
  request(c, 'crucible/ask', params, function(err, r)
    if not complete(t, err, r) then
      return
    end
    local sol = val(r.solution) or {}
    local full, code = answer_lines(t)
    local lines = { '', ('══ %s after %d attempt(s)'):format(r.outcome, r.iterations or 0) }
    if val(r.error) then
      table.insert(lines, 'Error: ' .. tostring(r.error))
    end
    table.insert(lines, 'Description: ' .. (val(sol.prefix) or ''))
    table.insert(lines, '```' .. (lang == 'bash' and 'sh' or lang))
    vim.list_extend(lines, vim.split(full, '\n', { plain = true }))
    table.insert(lines, '```')
    if val(r.run) then
      table.insert(lines, run_summary(r.run))
    end
    if code ~= '' then
      table.insert(lines, ('[i: insert below line %d of %s%s · :CrucibleTranscript]'):format(t.row, buf_label(src),
        t.line1 and (' · r: replace lines %d-%d'):format(t.line1, t.line2) or ''))
    end
    panel.append_lines(buf, lines)
    finished(t, ('%s after %d attempt(s)'):format(r.outcome, r.iterations or 0), r.outcome == 'passed')
    if opts.insert and code ~= '' then
      if r.outcome ~= 'passed' then
        notify('the answer did not pass its run; not inserted (see the ask panel)', vim.log.levels.WARN)
      else
        M.insert({ task = t, replace = opts.range })
      end
    end
  end, src)
  return t
end

--- Puts an ask's code into the buffer it was asked from: below the line
--- the cursor was on, or (opts.replace) in place of the ask's range.
--- opts.task: the ask (default: the one the current panel shows, else the
--- most recent). Returns true when it did.
function M.insert(opts)
  opts = opts or {}
  local t = opts.task or panel.owner[vim.api.nvim_get_current_buf()] or M.last_ask
  if not (t and t.kind == 'ask' and t.done and t.result) then
    notify('no finished answer to insert', vim.log.levels.WARN)
    return false
  end
  local full, code = answer_lines(t)
  if code == '' or not vim.api.nvim_buf_is_valid(t.src) then
    notify('the answer has no code (or its buffer is gone)', vim.log.levels.WARN)
    return false
  end
  local lines = vim.split(full, '\n', { plain = true })
  if opts.replace then
    if not t.line1 then
      notify('the ask had no range to replace; use insert', vim.log.levels.WARN)
      return false
    end
    vim.api.nvim_buf_set_lines(t.src, t.line1 - 1, t.line2, false, lines)
  else
    vim.api.nvim_buf_set_lines(t.src, t.row, t.row, false, lines)
  end
  return true
end

--- Checks the buffer (syntax, imports) and lists the findings in
--- crucible://check. Returns the task record.
function M.check()
  local bufnr = vim.api.nvim_get_current_buf()
  local lang = M.language_of(bufnr)
  if not lang then
    notify(("cannot check a buffer of filetype '%s'"):format(vim.api.nvim_buf_get_option(bufnr, 'filetype')),
      vim.log.levels.ERROR)
    return
  end
  local c = get_client()
  if not c then
    return
  end
  local t = new_task('check', 'check ' .. buf_label(bufnr))
  local buf = panel.claim('check', t)
  t.buf = buf
  local params = attached(bufnr) and { uri = vim.uri_from_bufnr(bufnr) }
    or { code = buffer_text(bufnr, 1, vim.api.nvim_buf_line_count(bufnr)), language = lang }
  params.environment = M.config.environment
  request(c, 'crucible/check', params, function(err, r)
    if not complete(t, err, r) then
      return
    end
    local lines = { ('── check: %d problem(s), %d import(s)'):format(#(r.diagnostics or {}), #(r.imports or {})) }
    for _, d in ipairs(r.diagnostics or {}) do
      table.insert(lines, ('%d:%d %s'):format(d.range.start.line + 1, d.range.start.character + 1, d.message))
    end
    for _, i in ipairs(r.imports or {}) do
      table.insert(lines, ('import %s: %s'):format(i.module, i.status))
    end
    if env_label(r.environment) then
      table.insert(lines, 'Environment: ' .. env_label(r.environment))
    end
    panel.append_lines(buf, lines)
  end, bufnr)
  return t
end

--- Cancels every ask and run that has not finished. A task the server
--- cancelled ends here (Neovim 0.7 drops the server's -32800 answer to the
--- cancelled request itself). Returns how many were cancelled.
function M.cancel()
  local c = client_id and vim.lsp.get_client_by_id(client_id)
  local n = 0
  for id, t in pairs(M.tasks) do
    if not t.done and (t.kind == 'ask' or t.kind == 'run') then
      n = n + 1
      if c then
        request(c, 'crucible/cancel', { task = id }, function(err, r)
          if not err and r and (r.cancelled or 0) > 0 then
            complete(t, { code = -32800, message = 'cancelled' })
          end
        end)
      else
        complete(t, { code = -32800, message = 'cancelled' })
      end
    end
  end
  notify(('cancelling %d task(s)'):format(n))
  return n
end

local function show(method, params, kind, render_fn)
  local c = get_client()
  if not c then
    return
  end
  local t = new_task(method, kind)
  local buf = panel.claim(kind, t)
  t.buf = buf
  request(c, method, params, function(err, r)
    if complete(t, err, r) then
      panel.append_lines(buf, render_fn(r))
    end
  end, 0)
  return t
end

--- A short account of a crucible/doctor report: {ok, lines}. Not ok when
--- code cannot run, the checks cannot load or the LLM endpoint is
--- unreachable.
function M.doctor_summary(r)
  local lines, problems = {}, {}
  local sbx = val(r.sandbox) or {}
  local bw = val(sbx.bwrap) or {}
  table.insert(lines, ('sandbox: %s%s, isolation %s, seccomp %s%s'):format(val(sbx.backend) or '?',
    val(bw.version) and (' (' .. bw.version .. ')') or '', val(sbx.isolation) or '?',
    (val(sbx.seccomp) or {}).ok and 'on' or 'off', sbx.ok == false and ' — NOT WORKING' or ''))
  if r.ok == false or sbx.ok == false then
    table.insert(problems, 'the sandbox does not work')
  end
  local interp = {}
  for lang, i in pairs(val(sbx.interpreters) or {}) do
    table.insert(interp, ('%s %s'):format(lang, i.ok and (val(i.version) or 'ok') or 'MISSING'))
  end
  table.sort(interp)
  table.insert(lines, 'interpreters: ' .. (#interp > 0 and table.concat(interp, ', ') or 'none'))
  local checks = val(r.checks) or {}
  table.insert(lines, 'checks: ' .. (checks.ok == false and 'NOT WORKING (grammars failed to load)' or 'ok'))
  if checks.ok == false then
    table.insert(problems, 'the checks do not load')
  end
  local llm = val(r.llm) or {}
  if llm.reachable then
    table.insert(lines, ('LLM: %s, model %s: reachable%s'):format(val(llm.baseUrl) or '?', val(llm.model) or '?',
      llm.modelListed == false and ' (model not in its list)' or ''))
  else
    table.insert(lines, ('LLM: %s, model %s: UNREACHABLE: %s'):format(val(llm.baseUrl) or '?', val(llm.model) or '?',
      val(llm.error) or 'no answer'))
    table.insert(problems, 'the LLM endpoint is unreachable')
  end
  if llm.apiKeySet == false then
    table.insert(lines, ('LLM key: %s is not set'):format(val(llm.apiKeyEnv) or 'the key variable'))
  end
  local envs = val(r.environments) or {}
  local st = val(r.settings) or {}
  local sset = val(st.sandbox) or {}
  table.insert(lines, ('environment: %s (%d built, %s)'):format(
    env_label(M.config.environment) or M.config.environment or val(sset.environment) or 'system',
    val(envs.count) or 0, val(envs.cacheDir) or '?'))
  local agent = val(st.agent) or {}
  table.insert(lines, ('limits: %s ms, %s MB, %s pids; %s attempt(s) per ask'):format(val(sset.timeoutMs) or '?',
    val(sset.memoryMb) or '?', val(sset.pids) or '?', val(agent.maxIterations) or '?'))
  for _, h in ipairs(vim.list_extend(vim.deepcopy(val(sbx.hints) or {}), val(envs.hints) or {})) do
    table.insert(lines, 'hint: ' .. tostring(h))
  end
  local ok = #problems == 0
  table.insert(lines, 1, ok and '── doctor: ok' or ('── doctor: NOT OK: ' .. table.concat(problems, '; ')))
  return ok, lines
end

--- Shows what works on this machine: a short summary, or (full) the whole
--- report.
function M.doctor(full)
  return show('crucible/doctor', vim.empty_dict(), 'doctor', function(r)
    if full then
      return vim.list_extend({ '── doctor (full report)' }, vim.split(vim.inspect(r), '\n', { plain = true }))
    end
    local _, lines = M.doctor_summary(r)
    table.insert(lines, '[:CrucibleDoctor! shows the full report]')
    return lines
  end)
end

--- Lists the most recent tasks.
function M.history(limit)
  return show('crucible/history', { limit = limit or 20 }, 'history', function(r)
    local lines = { '── history' }
    for _, h in ipairs(r.tasks or {}) do
      table.insert(lines, ('%s  %-4s %-9s %s'):format(h.task or '?', h.kind or '', val(h.outcome) or '',
        (val(h.question) or ''):gsub('\n', ' ')))
    end
    return lines
  end)
end

--- Shows a task's transcript (default: the latest ask): every attempt's
--- answer, check, run and reflection.
function M.transcript(task)
  task = task or (M.last_ask and M.last_ask.id)
  if not task then
    notify('no ask yet: give a task id (see :CrucibleHistory)', vim.log.levels.WARN)
    return
  end
  return show('crucible/transcript', { task = task }, 'transcript', function(r)
    local lines = { ('── transcript of %s: %s'):format(task, val(r.outcome) or '?') }
    vim.list_extend(lines, vim.split('Question: ' .. (val(r.question) or ''), '\n', { plain = true }))
    for i, a in ipairs(val(r.attempts) or {}) do
      table.insert(lines, ('── attempt %d'):format(val(a.iteration) or i))
      local sol = val(a.solution) or {}
      if val(sol.code) then
        table.insert(lines, '```' .. (val(r.language) or 'python'))
        if val(sol.imports) and sol.imports ~= '' then
          vim.list_extend(lines, vim.split(sol.imports, '\n', { plain = true }))
        end
        vim.list_extend(lines, vim.split(sol.code, '\n', { plain = true }))
        table.insert(lines, '```')
      end
      local run = val(a.run)
      if run then
        table.insert(lines, run_summary(run))
      end
      if val(a.error) then
        vim.list_extend(lines, vim.split('Why: ' .. a.error:gsub('%s+$', ''), '\n', { plain = true }))
      end
      if val(a.reflection) then
        vim.list_extend(lines, vim.split('Reflection: ' .. a.reflection, '\n', { plain = true }))
      end
    end
    return lines
  end)
end

--- Chooses the environment runs, checks and asks use: "system",
--- "workspace", or {"packages", requirement...}; no argument shows the
--- current one and those built.
function M.environment(args)
  args = args or {}
  if #args == 0 then
    return show('crucible/environments', vim.empty_dict(), 'environments', function(r)
      local lines = { '── environment in use: ' .. (env_label(M.config.environment) or M.config.environment
        or 'the server default (sandbox.environment)') }
      for _, e in ipairs(r or {}) do
        table.insert(lines, ('%s  %s %s  %s'):format(e.id or '?', e.language or '', table.concat(val(e.requirements) or {}, ' '),
          val(e.sizeBytes) and (math.floor(e.sizeBytes / 1048576) .. ' MiB') or ''))
      end
      return lines
    end)
  end
  if args[1] == 'system' or args[1] == 'workspace' then
    M.config.environment = args[1]
  elseif args[1] == 'packages' and #args > 1 then
    M.config.environment = { kind = 'packages', requirements = vim.list_slice(args, 2) }
  else
    notify('usage: :CrucibleEnv [system | workspace | packages REQ...]', vim.log.levels.ERROR)
    return
  end
  notify('environment: ' .. (env_label(M.config.environment) or M.config.environment))
end

--- Shows the panel of a task kind again ("ask", "run", "check", ...;
--- default: the most recent task's).
function M.panel(kind)
  kind = (kind and kind ~= '') and kind or (M.last and M.last.buf and vim.api.nvim_buf_get_name(M.last.buf):match('^crucible://(.*)$'))
    or 'ask'
  local name = 'crucible://' .. kind
  if vim.fn.bufexists(name) == 0 then
    notify('no panel ' .. name, vim.log.levels.WARN)
    return
  end
  panel.show(vim.fn.bufnr(name))
end

--- Configures the plugin: opts.cmd, opts.cmd_env, opts.filetypes,
--- opts.settings, opts.languages, opts.notify, opts.run_imports,
--- opts.restart, opts.environment (each replaces the default). Attaches to
--- matching buffers now and as they open; creates the commands.
function M.setup(opts)
  for k, v in pairs(opts or {}) do
    M.config[k] = v
  end
  local group = vim.api.nvim_create_augroup('crucible', { clear = true })
  vim.api.nvim_create_autocmd('FileType', {
    group = group,
    pattern = M.config.filetypes,
    callback = function(a)
      M.attach(a.buf)
    end,
  })
  attach_matching()
  local c = client_id and vim.lsp.get_client_by_id(client_id)
  if c and c.initialized then
    notify_server(c, 'workspace/didChangeConfiguration', { settings = { crucible = M.config.settings } })
  end
  -- Neovim 0.11+: also known to vim.lsp.config, for vim.lsp.enable('crucible')
  if vim.lsp.config and type(vim.lsp.config) ~= 'function' and has('0.11') then
    pcall(function()
      local cfg = client_config()
      cfg.filetypes = M.config.filetypes
      cfg.name = nil
      vim.lsp.config('crucible', cfg)
    end)
  end

  local cmd = vim.api.nvim_create_user_command
  cmd('CrucibleAsk', function(a)
    M.ask(a.args, { insert = a.bang, range = a.range > 0, line1 = a.line1, line2 = a.line2 })
  end, { nargs = '+', bang = true, range = true, desc = 'Ask Crucible for code (! inserts it)' })
  cmd('CrucibleRun', function(a)
    local o = { range = a.range > 0, line1 = a.line1, line2 = a.line2 }
    if a.bang then
      vim.ui.input({ prompt = 'stdin (\\n for new lines): ' }, function(s)
        if s then
          o.stdin = s:gsub('\\n', '\n') .. '\n'
          M.run(o)
        end
      end)
    else
      M.run(o)
    end
  end, { range = true, bang = true, desc = 'Run the buffer or the selected lines in the sandbox (! asks for stdin)' })
  cmd('CrucibleCheck', M.check, { desc = 'Check syntax and imports of the buffer' })
  cmd('CrucibleCancel', M.cancel, { desc = 'Cancel running Crucible tasks' })
  cmd('CrucibleDoctor', function(a)
    M.doctor(a.bang)
  end, { bang = true, desc = 'Show what Crucible can do on this machine (! the full report)' })
  cmd('CrucibleHistory', function(a)
    M.history(tonumber(a.args))
  end, { nargs = '?', desc = 'List recent Crucible tasks' })
  cmd('CrucibleTranscript', function(a)
    M.transcript(a.args ~= '' and a.args or nil)
  end, { nargs = '?', desc = "Show a task's attempts (default: the latest ask)" })
  cmd('CrucibleInsert', function(a)
    M.insert({ replace = a.bang })
  end, { bang = true, desc = 'Insert the latest answer below the cursor line it was asked from (! replaces its range)' })
  cmd('CruciblePanel', function(a)
    M.panel(a.args)
  end, { nargs = '?', complete = function()
    return { 'ask', 'run', 'check', 'doctor', 'history', 'transcript', 'environments' }
  end, desc = 'Show a Crucible panel again' })
  cmd('CrucibleEnv', function(a)
    M.environment(a.fargs)
  end, { nargs = '*', complete = function()
    return { 'system', 'workspace', 'packages' }
  end, desc = 'Show or choose the environment programs run in' })
  cmd('CrucibleRestart', function()
    M.stop()
    vim.wait(3000, function()
      return client_id == nil
    end, 20)
    restarts = {}
    attach_matching()
  end, { desc = 'Restart the Crucible server' })
end

return M
