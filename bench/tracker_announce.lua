-- wrk script for bench/tracker: announces of random peers over the info-hashes listed
-- (percent-encoded, one per line) in the file named by $HASHES; compact, numwant 50.
local hashes = {}
for line in io.lines(os.getenv("HASHES")) do
  hashes[#hashes + 1] = line
end

math.randomseed(os.time())

request = function()
  local ih = hashes[math.random(#hashes)]
  local peer = math.random(0, 2147483646)
  local left = (peer % 2 == 0) and "0" or "1000"
  local path = "/announce?info_hash=" .. ih ..
      "&peer_id=-WK0001-" .. string.format("%012d", peer) ..
      "&port=" .. (1 + peer % 65000) ..
      "&uploaded=0&downloaded=0&left=" .. left .. "&compact=1&numwant=50"
  return wrk.format("GET", path)
end
