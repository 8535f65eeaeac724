-- Neovim client for Crucible: runs `crucible serve` as a language server,
-- attaches it to code buffers, and provides the :Crucible* commands.
local panel = require('crucible.panel')

local M = {}

local defaults = {
  cmd = { 'crucible', 'serve' },
  cmd_env = nil,
  filetypes = { 'python', 'javascript', 'sh' },
  -- {llm = {...}, agent = {...}, sandbox = {...}, docs = {...}}: sent as
  -- initializationOptions and again on every setup() call.
  settings = {},
  -- filetype -> Crucible language, for buffers sent as plain code
  languages = { python = 'python', javascript = 'javascript', sh = 'bash', bash = 'bash' },
}

M.config = vim.deepcopy(defaults)
-- task id -> {kind, buf, done, result, err}; what the commands started.
M.tasks = {}
M.last = nil -- the most recent task record

local client_id = nil
local counter = 0

local function val(x)
  if x == vim.NIL then
    return nil
  end
  return x
end

local function new_task(kind, buf)
  counter = counter + 1
  local id = ('nvim-%d-%d'):format(vim.fn.getpid(), counter)
  local t = { id = id, kind = kind, buf = buf, done = false }
  M.tasks[id] = t
  M.last = t
  return t
end

local function task_of(result)
  return result and M.tasks[result.task]
end

local handlers = {
  ['crucible/output'] = function(_, r)
    local t = task_of(r)
    if t then
      panel.append(t.buf, r.text)
    end
  end,
  ['crucible/token'] = function(_, r)
    local t = task_of(r)
    if t then
      panel.append(t.buf, r.text)
    end
  end,
  ['crucible/phase'] = function(_, r)
    local t = task_of(r)
    if t then
      local detail = val(r.detail)
      panel.append_lines(t.buf, {
        ('── %s%s (attempt %d)'):format(r.phase, detail and (': ' .. detail) or '', r.iteration or 0),
      })
    end
  end,
  ['crucible/reflection'] = function(_, r)
    local t = task_of(r)
    if t then
      panel.append_lines(t.buf, { '── reflection:' })
      panel.append(t.buf, r.text)
    end
  end,
  ['crucible/attempt'] = function(_, r)
    local t = task_of(r)
    if t then
      local run = val(r.run) or {}
      panel.append_lines(t.buf, { ('── attempt %d finished: %s'):format(r.iteration or 0, val(run.outcome) or 'not run') })
    end
  end,
}

--- Starts the client unless it runs already. Returns its id, or nil when
--- the server cannot be started (the reason is shown).
function M.start()
  if client_id and not vim.lsp.client_is_stopped(client_id) then
    return client_id
  end
  local settings = M.config.settings
  client_id = vim.lsp.start_client({
    name = 'crucible',
    cmd = M.config.cmd,
    cmd_env = M.config.cmd_env,
    root_dir = vim.loop.cwd(),
    init_options = (settings and next(settings)) and settings or nil,
    handlers = handlers,
    on_exit = function()
      for _, t in pairs(M.tasks) do
        if not t.done then
          t.done = true
          t.err = { message = 'the crucible server exited' }
        end
      end
      client_id = nil
    end,
  })
  return client_id
end

--- The running client, initialized; nil (reason shown) when there is none.
local function get_client()
  local id = M.start()
  local c = id and vim.lsp.get_client_by_id(id)
  if not c then
    vim.notify('crucible: the server is not running (check `cmd` in setup())', vim.log.levels.ERROR)
    return nil
  end
  if not c.initialized then
    vim.wait(5000, function()
      return c.initialized
    end, 10)
  end
  return c
end

--- Attaches the client to a buffer (starting the client when needed).
function M.attach(bufnr)
  local id = M.start()
  if id then
    vim.lsp.buf_attach_client(bufnr, id)
  end
end

local function language_of(bufnr)
  return M.config.languages[vim.api.nvim_buf_get_option(bufnr, 'filetype')] or 'python'
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
  return s
end

local function finish(t, err, result)
  t.done = true
  t.err = err
  t.result = result
  if err then
    local cancelled = err.code == -32800
    panel.append_lines(t.buf, { cancelled and '── cancelled' or ('── error: ' .. tostring(err.message)) })
    return false
  end
  return true
end

--- Runs the buffer, or lines line1..line2 of it when `range` is set, in the
--- sandbox; output streams into crucible://output and runtime errors come
--- back as diagnostics on the buffer. Returns the task record.
function M.run(opts)
  opts = opts or {}
  local bufnr = opts.bufnr or vim.api.nvim_get_current_buf()
  local c = get_client()
  if not c then
    return
  end
  local buf = panel.open('crucible://output')
  local t = new_task('run', buf)
  local params = { task = t.id }
  local line1, line2 = opts.line1 or 1, opts.line2 or vim.api.nvim_buf_line_count(bufnr)
  if attached(bufnr) then
    params.uri = vim.uri_from_bufnr(bufnr)
    if opts.range then
      params.range = line_range(line1, line2)
    end
  else
    params.code = buffer_text(bufnr, line1, line2)
    params.language = language_of(bufnr)
  end
  local name = vim.fn.fnamemodify(vim.api.nvim_buf_get_name(bufnr), ':t')
  panel.append_lines(buf, { ('── run %s%s'):format(name ~= '' and name or '[buffer]',
    opts.range and (' lines %d-%d'):format(line1, line2) or '') })
  c.request('crucible/run', params, function(err, result)
    if finish(t, err, result) then
      panel.append_lines(buf, { run_summary(result) })
    end
  end, bufnr)
  return t
end

--- Asks Crucible for code. The question, phases, streamed tokens and output
--- go to crucible://ask, then the description, the code and its run. With
--- opts.insert the code replaces lines line1..line2 (opts.range) or goes
--- below the cursor line, if the answer passed. Returns the task record.
function M.ask(question, opts)
  opts = opts or {}
  if not question or question == '' then
    vim.notify('crucible: :CrucibleAsk needs a question', vim.log.levels.ERROR)
    return
  end
  local src = vim.api.nvim_get_current_buf()
  local row = vim.api.nvim_win_get_cursor(0)[1]
  local c = get_client()
  if not c then
    return
  end
  local lang = language_of(src)
  local buf = panel.open('crucible://ask')
  panel.clear(buf)
  local t = new_task('ask', buf)
  local params = { question = question, language = lang, task = t.id }
  if opts.range then
    if attached(src) then
      params.context = { uri = vim.uri_from_bufnr(src), range = line_range(opts.line1, opts.line2) }
    else
      params.context = { text = buffer_text(src, opts.line1, opts.line2) }
    end
  end
  panel.append_lines(buf, { 'Question: ' .. question })
  c.request('crucible/ask', params, function(err, r)
    if not finish(t, err, r) then
      return
    end
    local sol = val(r.solution) or {}
    local imports, code = val(sol.imports) or '', val(sol.code) or ''
    local full = imports ~= '' and (imports .. '\n\n' .. code) or code
    local lines = { '', ('══ %s after %d attempt(s)'):format(r.outcome, r.iterations or 0) }
    if val(r.error) then
      table.insert(lines, 'Error: ' .. tostring(r.error))
    end
    table.insert(lines, 'Description: ' .. (val(sol.prefix) or ''))
    table.insert(lines, '```' .. lang)
    vim.list_extend(lines, vim.split(full, '\n', true))
    table.insert(lines, '```')
    if val(r.run) then
      table.insert(lines, run_summary(r.run))
    end
    panel.append_lines(buf, lines)
    if opts.insert and code ~= '' and vim.api.nvim_buf_is_valid(src) then
      if r.outcome ~= 'passed' then
        vim.notify('crucible: the answer did not pass its run; not inserted (see crucible://ask)', vim.log.levels.WARN)
      elseif opts.range then
        vim.api.nvim_buf_set_lines(src, opts.line1 - 1, opts.line2, false, vim.split(full, '\n', true))
      else
        vim.api.nvim_buf_set_lines(src, row, row, false, vim.split(full, '\n', true))
      end
    end
  end, src)
  return t
end

--- Checks the buffer (syntax, imports) and lists the findings in
--- crucible://output. Returns the task record.
function M.check()
  local bufnr = vim.api.nvim_get_current_buf()
  local c = get_client()
  if not c then
    return
  end
  local buf = panel.open('crucible://output')
  local t = new_task('check', buf)
  local params = attached(bufnr) and { uri = vim.uri_from_bufnr(bufnr) }
    or { code = buffer_text(bufnr, 1, vim.api.nvim_buf_line_count(bufnr)), language = language_of(bufnr) }
  c.request('crucible/check', params, function(err, r)
    if not finish(t, err, r) then
      return
    end
    local lines = { ('── check: %d problem(s), %d import(s)'):format(#(r.diagnostics or {}), #(r.imports or {})) }
    for _, d in ipairs(r.diagnostics or {}) do
      table.insert(lines, ('%d:%d %s'):format(d.range.start.line + 1, d.range.start.character + 1, d.message))
    end
    for _, i in ipairs(r.imports or {}) do
      table.insert(lines, ('import %s: %s'):format(i.module, i.status))
    end
    panel.append_lines(buf, lines)
  end, bufnr)
  return t
end

--- Cancels every task the commands started that has not finished.
function M.cancel()
  local c = client_id and vim.lsp.get_client_by_id(client_id)
  local n = 0
  for id, t in pairs(M.tasks) do
    if not t.done and c then
      c.request('crucible/cancel', { task = id }, function() end)
      n = n + 1
    end
  end
  vim.notify(('crucible: cancelling %d task(s)'):format(n))
end

local function show(method, params, render)
  local c = get_client()
  if not c then
    return
  end
  local buf = panel.open('crucible://output')
  local t = new_task(method, buf)
  c.request(method, params, function(err, r)
    if finish(t, err, r) then
      panel.append_lines(buf, render(r))
    end
  end, 0)
  return t
end

--- Shows what works on this machine (sandbox, interpreters, LLM, settings).
function M.doctor()
  return show('crucible/doctor', vim.empty_dict(), function(r)
    return vim.list_extend({ '── doctor' }, vim.split(vim.inspect(r), '\n', true))
  end)
end

--- Lists the most recent tasks.
function M.history(limit)
  return show('crucible/history', { limit = limit or 20 }, function(r)
    local lines = { '── history' }
    for _, h in ipairs(r.tasks or {}) do
      table.insert(lines, ('%s  %-4s %-9s %s'):format(h.task or '?', h.kind or '', val(h.outcome) or '',
        (val(h.question) or ''):gsub('\n', ' ')))
    end
    return lines
  end)
end

--- Configures the plugin: opts.cmd, opts.cmd_env, opts.filetypes,
--- opts.settings, opts.languages (each replaces the default). Attaches to
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
  for _, b in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_is_loaded(b) and vim.tbl_contains(M.config.filetypes, vim.api.nvim_buf_get_option(b, 'filetype')) then
      M.attach(b)
    end
  end
  local c = client_id and vim.lsp.get_client_by_id(client_id)
  if c and c.initialized then
    c.notify('workspace/didChangeConfiguration', { settings = { crucible = M.config.settings } })
  end

  local cmd = vim.api.nvim_create_user_command
  cmd('CrucibleAsk', function(a)
    M.ask(a.args, { insert = a.bang, range = a.range > 0, line1 = a.line1, line2 = a.line2 })
  end, { nargs = '+', bang = true, range = true, desc = 'Ask Crucible for code (! inserts it)' })
  cmd('CrucibleRun', function(a)
    M.run({ range = a.range > 0, line1 = a.line1, line2 = a.line2 })
  end, { range = true, desc = 'Run the buffer or the selected lines in the sandbox' })
  cmd('CrucibleCheck', M.check, { desc = 'Check syntax and imports of the buffer' })
  cmd('CrucibleCancel', M.cancel, { desc = 'Cancel running Crucible tasks' })
  cmd('CrucibleDoctor', M.doctor, { desc = 'Show what Crucible can do on this machine' })
  cmd('CrucibleHistory', function(a)
    M.history(tonumber(a.args))
  end, { nargs = '?', desc = 'List recent Crucible tasks' })
end

return M
