-- Scratch buffers that Crucible streams text into (the ask and output panes).
local M = {}

local function find_buf(name)
  for _, b in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_is_valid(b) and vim.api.nvim_buf_get_name(b) == name then
      return b
    end
  end
end

--- Returns the scratch buffer called `name` ("crucible://ask"), creating it
--- when needed, and shows it in a split unless a window already shows it.
--- The current window stays current.
function M.open(name, filetype)
  local buf = find_buf(name)
  if not buf then
    buf = vim.api.nvim_create_buf(false, true)
    vim.api.nvim_buf_set_name(buf, name)
    vim.api.nvim_buf_set_option(buf, 'bufhidden', 'hide')
    vim.api.nvim_buf_set_option(buf, 'filetype', filetype or 'crucible')
  end
  if vim.fn.bufwinid(buf) == -1 then
    local win = vim.api.nvim_get_current_win()
    vim.cmd('botright split')
    vim.api.nvim_win_set_buf(0, buf)
    vim.api.nvim_win_set_height(0, math.max(8, math.floor(vim.o.lines / 3)))
    vim.api.nvim_set_current_win(win)
  end
  return buf
end

function M.clear(buf)
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, {})
end

--- Appends text to the buffer's last line; newlines in text start new lines,
--- so streamed pieces join up the way they were produced. Windows showing
--- the buffer follow its end.
function M.append(buf, text)
  if not (buf and vim.api.nvim_buf_is_valid(buf)) or text == nil or text == '' then
    return
  end
  local pieces = vim.split(text, '\n', true)
  local last = vim.api.nvim_buf_line_count(buf)
  local tail = vim.api.nvim_buf_get_lines(buf, last - 1, last, false)[1] or ''
  pieces[1] = tail .. pieces[1]
  vim.api.nvim_buf_set_lines(buf, last - 1, last, false, pieces)
  local n = vim.api.nvim_buf_line_count(buf)
  for _, win in ipairs(vim.fn.win_findbuf(buf)) do
    vim.api.nvim_win_set_cursor(win, { n, 0 })
  end
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

return M
