-- :checkhealth crucible: the Neovim version, the server program, and the
-- server's own doctor report (sandbox, interpreters, checks, LLM endpoint).
local M = {}

-- vim.health's report functions under their 0.7, 0.8-0.9 and 0.10+ names.
local function reporter()
  local h = vim.health
  if h and h.start then
    return h
  end
  h = (h and h.report_start) and h or require('health')
  return { start = h.report_start, ok = h.report_ok, warn = h.report_warn, error = h.report_error, info = h.report_info }
end

function M.check()
  local health = reporter()
  local crucible = require('crucible')
  health.start('crucible')
  if vim.fn.has('nvim-0.7') == 1 then
    health.ok('Neovim ' .. tostring(vim.version().major) .. '.' .. vim.version().minor .. '.' .. vim.version().patch)
  else
    health.error('Neovim 0.7 or newer is needed')
    return
  end
  local cmd = crucible.config.cmd
  local prog = cmd and cmd[1]
  if not prog or vim.fn.executable(prog) ~= 1 then
    health.error(('server program %s is not executable'):format(tostring(prog)),
      { "build it (meson setup build && ninja -C build) and give its path: require('crucible').setup({cmd = {'/path/to/crucible', 'serve'}})" })
    return
  end
  health.ok('server program: ' .. vim.fn.exepath(prog))
  local id = crucible.start()
  local c = id and vim.lsp.get_client_by_id(id)
  if c and not c.initialized then
    vim.wait(10000, function()
      return c.initialized
    end, 20)
  end
  if not (c and c.initialized) then
    health.error('the server did not start (see :lua vim.cmd("edit " .. vim.lsp.get_log_path()))')
    return
  end
  health.ok('server running: ' .. table.concat(cmd, ' '))
  local r
  if vim.fn.has('nvim-0.11') == 1 then
    r = c:request_sync('crucible/doctor', vim.empty_dict(), 60000, 0)
  else
    r = c.request_sync('crucible/doctor', vim.empty_dict(), 60000, 0)
  end
  if not r or r.err or not r.result then
    health.error('crucible/doctor failed: ' .. vim.inspect(r and r.err or 'no answer in 60 s'))
    return
  end
  local ok, lines = crucible.doctor_summary(r.result)
  for i = 2, #lines do
    local l = lines[i]
    if l:find('UNREACHABLE', 1, true) or l:find('NOT WORKING', 1, true) or l:find('MISSING', 1, true) then
      health.error(l)
    elseif l:find('^hint:') or l:find('not set', 1, true) or l:find('not in its list', 1, true) then
      health.warn(l)
    else
      health.ok(l)
    end
  end
  if not ok then
    health.error((lines[1]:gsub('^── doctor: ', 'crucible: ')))
  end
end

return M
