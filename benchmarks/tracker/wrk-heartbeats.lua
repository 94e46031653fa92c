-- wrk script for the tracker's heartbeat benchmark (benchmarks/tracker/http.ts).
-- The requests file holds one heartbeat per line: "<mac> <json body>", each with a
-- timestamp that is fresh and strictly increasing per node, made just before the run.
-- One wrk thread reads them all and sends each once (replays would be refused).
local requests = {}
local i = 0

function init(args)
  for line in io.lines(args[1]) do
    local mac, body = line:match("^(%x+) (.*)$")
    requests[#requests + 1] = wrk.format("POST", "/v1/nodes/heartbeat", {
      ["content-type"] = "application/json",
      ["x-shoal-mac"] = mac,
    }, body)
  end
end

function request()
  i = i + 1
  if i > #requests then i = 1 end
  return requests[i]
end
