-- raft-kv: linearizable GET /kv/<key> over the first 1,000 keys (written by
-- the PUT runs before it, so every read finds its key).
package.path = debug.getinfo(1, "S").source:match("@?(.*/)") .. "?.lua;" .. package.path
local c = require("common")
setup = c.setup
init = c.init
request = function()
    return wrk.format("GET", "/kv/k" .. math.random(0, 999) .. "?consistency=linearizable")
end
