-- Shared by the wrk scripts of examples/bench: keys and values like
-- raft-load's (100-byte values over 10,000 keys "k0".."k9999"), a per-thread
-- random stream, and base64 for etcd's JSON gateway.
local M = {}

M.keys = 10000
M.value = string.rep("x", 100)

local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

-- Standard base64 with padding (etcd's gateway takes keys and values so).
function M.base64(s)
    local out = {}
    for i = 1, #s, 3 do
        local a, b, c = s:byte(i, i + 2)
        local n = a * 65536 + (b or 0) * 256 + (c or 0)
        local chars = (b == nil) and 2 or ((c == nil) and 3 or 4)
        for j = 1, 4 do
            if j <= chars then
                local k = math.floor(n / 2 ^ (18 - 6 * (j - 1))) % 64
                out[#out + 1] = alphabet:sub(k + 1, k + 1)
            else
                out[#out + 1] = "="
            end
        end
    end
    return table.concat(out)
end

-- Each wrk thread gets its own seed, so threads do not write the same keys
-- in lockstep.
local next_thread = 0
function M.setup(thread)
    next_thread = next_thread + 1
    thread:set("seed", next_thread)
end

function M.init()
    math.randomseed(0x5eed + (seed or 0))
end

function M.key()
    return "k" .. math.random(0, M.keys - 1)
end

return M
