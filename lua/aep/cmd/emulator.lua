-- aep emulator: a local, stateful AEP (IMS, Schema Registry, Identity, Catalog, Flow Service,
-- streaming, batch ingestion, Profile) on one port. See docs/EMULATOR-INTERNALS.md.
local cli = require "aep.cli"

local spec = {
  { "port", "integer", default = 8080, help = "TCP port (0: any free port)" },
  { "host", "string", default = "127.0.0.1", help = "address to listen on" },
  { "data-dir", "string", metavar = "DIR", help = "state (SQLite) and environment.json (default $XDG_STATE_HOME/aep/emulator, as `aep run`)" },
  { "seed", "integer", help = "seed for injected faults (deterministic runs)" },
  { "tls-cert", "string", metavar = "FILE", help = "PEM certificate: serve HTTPS on the same port" },
  { "tls-key", "string", metavar = "FILE", help = "PEM private key for --tls-cert" },
  { "profile-lag", "number", default = 0, metavar = "SECONDS", help = "delay before ingested data shows in Profile" },
  { "batch-window", "number", default = 1, metavar = "SECONDS", help = "streamed messages validated after the answer are grouped into one run and its batches per dataflow, dataset and window of SECONDS" },
  { "validation-delay", "number", default = 0, metavar = "SECONDS", help = "streamed messages are validated no earlier than SECONDS after their answer" },
  { "faults", "string", metavar = "SPEC", help = "injected faults, see below" },
  { "tenant", "string", metavar = "NAME", help = "tenant id of a new org (default: generated)" },
  cli.common.verbose,
}

local usage = [[
usage: aep emulator [--port 8080] [--host 127.0.0.1] [--data-dir DIR] [--seed N]
                    [--tls-cert FILE --tls-key FILE] [--profile-lag SECONDS]
                    [--batch-window SECONDS] [--validation-delay SECONDS]
                    [--faults SPEC] [--tenant NAME]

Serves a local, stateful Adobe Experience Platform on one port: IMS (/ims/token/v3,
/ims/exchange/jwt), Schema Registry, Identity namespaces, Catalog, Flow Service, the legacy
inlet and event-type APIs, streaming (/collection/...), the Edge Network (/ee/..., with
datastreams: /emulator/datastreams), batch ingestion, Data Access (dataset files, previews,
failed records) and Profile access.
On first start it creates an org and writes its credentials as a Postman environment to
DIR/environment.json (mode 0600; kept across restarts, URLs refreshed). State lives in
DIR/emulator.db (SQLite, WAL): what was answered survives kill -9.

Flags:
]] .. cli.flags_help(spec) .. [[


Faults (--faults SPEC, or GET/PUT /emulator/faults with {"spec": SPEC, "seed": N}):
  SPEC     := RULE[;RULE...]     RULE := SELECTOR:KNOB=VALUE[,KNOB=VALUE...]
  SELECTOR := a route group: ims schemas identity catalog flows dataprep ups streaming edge
              batches profile sandboxes
              | a path prefix such as /collection/batch | * (every route but /emulator/)
              the most specific selector wins knob by knob (prefix > group > *)
  KNOB     := 429=P 500=P 503=P    answer that status instead (429/503 with Retry-After)
              drop_before=P        close the connection, request not processed
              drop_after=P         process and commit, then close mid-answer (half the body)
              close_after=P        process and commit, then close with zero answer bytes
              reset_after=P        process and commit, then reset the connection (TCP RST)
              die_after=P          process and commit, hold the answer `delay` s, then the
                                   emulator kills itself (SIGKILL): held answers are lost
              latency=P            answer `delay` seconds late
              expire_token=P       the request's token expires now (401, mint a new one)
              retry_after=S delay=S     (defaults 1 s)
              token_ttl=S  (* only)  new tokens die after S seconds, whatever expires_in says
  P is a probability in [0, 1]; draws are deterministic under --seed.
  Example: --faults 'streaming:429=0.1,503=0.05,drop_after=0.01,latency=0.02;*:500=0.01'

Asynchronous validation: a message streamed without syncValidation=true is answered once it
is stored, then validated between requests (as AEP does). Valid records reach the dataset and
Profile; invalid ones a failed batch of the dataset. Per dataflow, dataset and --batch-window
interval: one run (GET /data/foundation/flowservice/runs?property=flowId==ID), a success and a
failed Catalog batch (GET /data/foundation/catalog/batches?dataSet=ID), the failed records with
their errors (GET /data/foundation/export/batches/ID/failed), Observability Insights metrics
(POST /data/infrastructure/observability/insights/metrics).

Emulator endpoints: GET /emulator/health, GET /emulator/state, POST /emulator/reset,
GET /emulator/datasets/ID/records, GET /emulator/requests?since=SEQ, GET|PUT /emulator/faults,
POST /emulator/sandboxes {"name": "dev"} (sandboxes other than prod exist once created).
From loopback they need no credentials, but Host must name the emulator (localhost, 127.0.0.1,
[::1] or --host), a browser Origin must be the emulator's own, and calls that change state need
'Content-Type: application/json' or an 'X-Aep-Admin: 1' header. From other machines (--host
0.0.0.0) they need 'Authorization: Bearer TOKEN': EMULATOR_ADMIN_TOKEN from the environment file
(new at each start) or an access token of the org.

Limits: request bodies are refused (413) from their headers past the route's limit (streaming
1 MiB, batch files 256 MiB, large-file chunks 512000000 bytes, admin 64 KiB, other APIs
10 MiB); headers must be complete 10 s after the request line, bodies arrive at 1 MiB/s at
least (after 30 s); stalled connections give their place to new ones. One emulator per data
directory (DIR/emulator.lock names its pid and URL).

Prints, in order: "aep emulator: bound to ADDRESS:PORT" (only when --host is not loopback),
"aep emulator: environment file FILE", "aep emulator: listening on URL" (the URL clients use),
"aep emulator: ready". SIGINT/SIGTERM: clean shutdown, exit 0: new connections and requests
are refused (503), requests already processed still get their answers (held ones at once; at
most 10 s), then the emulator exits; a second signal exits at once.

Examples:
  aep emulator --port 0 --data-dir /tmp/aep-emu
  aep emulator --tenant exchangeinternal --seed 7 --faults 'streaming:503=0.05'
  aep emulator --port 0 --data-dir /tmp/aep-emu --batch-window 60 --validation-delay 5
]]

local function run(args)
  local opts = cli.parse(args, spec)
  if opts.tenant and not require("aep.emulator.org").valid_tenant(opts.tenant) then
    cli.usage_error("--tenant must be lowercase letters and digits, starting with a letter")
  end
  if opts.port < 0 or opts.port > 65535 then cli.usage_error("--port must be 0..65535") end
  if opts.profile_lag < 0 then cli.usage_error("--profile-lag must not be negative") end
  if not (opts.batch_window > 0 and opts.batch_window <= 3600) then
    cli.usage_error("--batch-window must be more than 0 and at most 3600 seconds")
  end
  if opts.validation_delay < 0 then cli.usage_error("--validation-delay must not be negative") end
  if (opts.tls_cert == nil) ~= (opts.tls_key == nil) then
    cli.usage_error("--tls-cert and --tls-key go together")
  end
  if opts.faults then
    local ok, err = require("aep.emulator.faults").parse(opts.faults)
    if not ok then cli.usage_error("--faults: " .. err) end
  end
  if not opts.data_dir then
    opts.data_dir = require("aep.file").state_dir() .. "/emulator"
  end
  local emulator = require "aep.emulator"
  return emulator.start(opts, function(app)
    if not emulator.loopback_bind(opts.host) then
      local shown = opts.host:find(":", 1, true) and "[" .. opts.host .. "]" or opts.host
      io.stdout:write("aep emulator: bound to ", shown, ":", app.port, "\n")
      io.stderr:write("aep emulator: warning: listening on ", shown, ":", app.port, ", not only on loopback: ",
        "other machines can reach it. Admin calls (/emulator/*) from them need 'Authorization: Bearer' ",
        "with EMULATOR_ADMIN_TOKEN from ", app.env_file, " or an access token of the org\n")
    end
    io.stdout:write("aep emulator: environment file ", app.env_file, "\n")
    io.stdout:write("aep emulator: listening on ", app.urls.base, "\n")
    io.stdout:write("aep emulator: ready\n")
    io.stdout:flush()
  end)
end

return { summary = "run a local, stateful AEP (the default target of every workflow)", usage = usage, run = run }
