-- Scratch buffers that Crucible streams text into: one reusable panel per
-- task kind ("crucible://ask", "crucible://run", ...), a second one of a kind
-- only while the first is busy with a task still going. All panels share one
-- window at the bottom, so opening one never shrinks the source window again.
local M = {}

-- buffer -> the task record it shows (panel.claim); a panel is busy while
-- that task is not done.
M.owner = {}

local function find_buf(name)
  for _, b in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_is_valid(b) and vim.api.nvim_buf_get_name(b) == name then
      return b
    end
  end
end

-- Highlighting: headers, errors, and the fenced code in the language's own
-- syntax (when Neovim has one for it).
local function set_syntax(buf)
  vim.api.nvim_buf_call(buf, function()
    vim.cmd([[
      syntax clear
      syntax match CrucibleHeader /^[─═]\{2}.*/
      syntax match CrucibleError /^── \%(error\|cancelled\|attempt \d\+ failed\|rejected\).*/
      syntax match CrucibleError /^[═]\{2} \%(failed\|error\|cancelled\).*/
      syntax match CrucibleOk /^[═]\{2} passed.*/
      syntax match CrucibleLabel /^\%(Question\|Description\|Error\|Why\|Environment\):/
      syntax match CrucibleHint /^\[.*\]$/
      highlight default link CrucibleHeader Title
      highlight default link CrucibleError ErrorMsg
      highlight default link CrucibleOk DiffAdd
      highlight default link CrucibleLabel Statement
      highlight default link CrucibleHint Comment
    ]])
    for _, lang in ipairs({ 'python', 'javascript', 'sh' }) do
      local ok = pcall(vim.cmd, ('syntax include @CrucibleCode_%s syntax/%s.vim'):format(lang, lang))
      if ok then
        vim.cmd(('syntax region CrucibleCode_%s matchgroup=Comment start=/^```%s$/ end=/^```$/ keepend contains=@CrucibleCode_%s')
          :format(lang, lang == 'sh' and '\\%(sh\\|bash\\)' or lang, lang))
      end
      vim.b.current_syntax = nil
    end
  end)
end

local function create(name)
  local buf = vim.api.nvim_create_buf(false, true)
  vim.api.nvim_buf_set_name(buf, name)
  vim.api.nvim_buf_set_option(buf, 'bufhidden', 'hide')
  vim.api.nvim_buf_set_option(buf, 'swapfile', false)
  vim.api.nvim_buf_set_option(buf, 'filetype', 'crucible')
  vim.api.nvim_buf_set_keymap(buf, 'n', 'q', '<cmd>close<cr>', { noremap = true, silent = true, desc = 'close the panel' })
  pcall(set_syntax, buf)
  return buf
end

--- The window that shows Crucible panels, if one is open.
local function panel_win()
  for _, w in ipairs(vim.api.nvim_list_wins()) do
    local b = vim.api.nvim_win_get_buf(w)
    if M.owner[b] ~= nil or vim.api.nvim_buf_get_name(b):match('^crucible://') then
      return w
    end
  end
end

--- Shows buf in the panel window (one split at the bottom, made when
--- needed). The current window stays current.
function M.show(buf)
  if vim.fn.bufwinid(buf) ~= -1 then
    return
  end
  local cur = vim.api.nvim_get_current_win()
  local win = panel_win()
  if win then
    vim.api.nvim_win_set_buf(win, buf)
  else
    vim.cmd('botright split')
    vim.api.nvim_win_set_buf(0, buf)
    vim.api.nvim_win_set_height(0, math.max(8, math.floor(vim.o.lines / 3)))
    vim.wo.number = false
    vim.wo.wrap = true
    vim.wo.signcolumn = 'no'
  end
  if vim.api.nvim_win_is_valid(cur) then
    vim.api.nvim_set_current_win(cur)
  end
end

--- Returns the scratch buffer called `name` ("crucible://ask"), creating it
--- when needed, and shows it. The current window stays current.
function M.open(name)
  local buf = find_buf(name) or create(name)
  M.show(buf)
  return buf
end

--- A panel for a new task of `kind`: the kind's panel, cleared, unless a task
--- still going uses it; then "crucible://KIND-2" and so on. The panel is
--- claimed for task t (shown, and busy until t.done).
function M.claim(kind, t)
  local n = 1
  while true do
    local name = 'crucible://' .. kind .. (n > 1 and ('-' .. n) or '')
    local buf = find_buf(name)
    local owner = buf and M.owner[buf]
    if not (owner and not owner.done) then
      buf = buf or create(name)
      M.owner[buf] = t
      M.clear(buf)
      M.show(buf)
      return buf
    end
    n = n + 1
  end
end

function M.clear(buf)
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, {})
end

local function follow(buf)
  local n = vim.api.nvim_buf_line_count(buf)
  for _, win in ipairs(vim.fn.win_findbuf(buf)) do
    vim.api.nvim_win_set_cursor(win, { n, 0 })
  end
end

--- Appends text to the buffer's last line; newlines in text start new lines,
--- so streamed pieces join up the way they were produced. Windows showing
--- the buffer follow its end.
function M.append(buf, text)
  if not (buf and vim.api.nvim_buf_is_valid(buf)) or text == nil or text == '' then
    return
  end
  local pieces = vim.split(text, '\n', { plain = true })
  local last = vim.api.nvim_buf_line_count(buf)
  local tail = vim.api.nvim_buf_get_lines(buf, last - 1, last, false)[1] or ''
  pieces[1] = tail .. pieces[1]
  vim.api.nvim_buf_set_lines(buf, last - 1, last, false, pieces)
  follow(buf)
end

--- Appends whole lines, starting on a fresh line and ending with a line
--- break, so streamed text that follows starts below them.
function M.append_lines(buf, lines)
  if not (buf and vim.api.nvim_buf_is_valid(buf)) then
    return
  end
  local last = vim.api.nvim_buf_line_count(buf)
  local tail = vim.api.nvim_buf_get_lines(buf, last - 1, last, false)[1] or ''
  M.append(buf, (tail ~= '' and '\n' or '') .. table.concat(lines, '\n') .. '\n')
end

--- The number of lines, for a later M.replace_from (a region that is redrawn
--- as it grows, such as the code being generated).
function M.mark(buf)
  if not (buf and vim.api.nvim_buf_is_valid(buf)) then
    return 0
  end
  local last = vim.api.nvim_buf_line_count(buf)
  local tail = vim.api.nvim_buf_get_lines(buf, last - 1, last, false)[1] or ''
  return tail == '' and last - 1 or last
end

--- Replaces everything after line `from` (a M.mark) with lines, plus an
--- empty last line for what follows.
function M.replace_from(buf, from, lines)
  if not (buf and vim.api.nvim_buf_is_valid(buf)) then
    return
  end
  local l = vim.list_extend(vim.deepcopy(lines), { '' })
  vim.api.nvim_buf_set_lines(buf, from, -1, false, l)
  follow(buf)
end

return M
