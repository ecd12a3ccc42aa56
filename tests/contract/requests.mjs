// The requests the contract test sends: first the set-up of the project's own workflow (the
// collection's loyalty field group, schema, identity descriptor, Profile dataset, a batch, a
// second batch with a large-file upload (chunks, HEAD, preview, ABORT), a streaming connection
// with its dataflow, streamed messages; as tests/lua/support/fixtures.lua
// makes them), then one request per documented operation built from the spec (path parameters
// from the objects created first, required query parameters, the documented request example as
// body), then the invalid requests the specs describe (an unknown id where 404 is documented, an
// empty body or no required query parameter where 400 is, no credentials where 401 is), deletions
// last. Every answer goes to `send`'s checks (run.mjs).

const SR = "/data/foundation/schemaregistry";
const CATALOG = "/data/foundation/catalog";
const IMPORT = "/data/foundation/import";
const FLOWS = "/data/foundation/flowservice";
const XED = "application/vnd.adobe.xed+json";
const XED_FULL = "application/vnd.adobe.xed-full+json;version=1";
const STREAMING_SPEC = { id: "bc7b00d6-623a-4dfc-9fdb-f1240aeadaeb", version: "1.0" };
const DATALAKE_SPEC = { id: "c604ff05-7f1a-43c0-8e18-33bf874cb11c", version: "1.0" };
const FLOW_SPEC = { id: "d8a6f005-7eaf-4153-983e-e8574508b877", version: "1.0" };
const UNKNOWN = "0123456789abcdef01234567"; // an id nothing has: the 404 requests
const MEMBER = "contract@example.com";

function profileMixin(tenant) {
  return {
    type: "object", title: "Contract Loyalty Details", description: "Loyalty details of a member",
    "meta:intendedToExtend": ["https://ns.adobe.com/xdm/context/profile"],
    definitions: { loyalty: { properties: { ["_" + tenant]: {
      type: "object", "meta:xdmType": "object", required: ["loyaltyID"],
      properties: {
        loyaltyID: { type: "string", format: "email", title: "Loyalty ID", description: "" },
        totalLoyaltyPoints: { type: "integer", "meta:xdmType": "int", title: "Total Loyalty Points", description: "" },
      } } } } },
    allOf: [{ $ref: "#/definitions/loyalty" }],
  };
}

function message(ids, entity) {
  const schemaRef = { id: ids.schemaId, contentType: XED_FULL };
  return { header: { schemaRef, imsOrgId: ids.org, datasetId: ids.datasetId, flowId: ids.flowId,
                     source: { name: "contract" } },
           body: { xdmMeta: { schemaRef }, xdmEntity: entity } };
}

function entity(tenant, email) {
  return { ["_" + tenant]: { loyaltyID: email, totalLoyaltyPoints: 10 },
           personalEmail: { address: email }, person: { name: { firstName: "Con", lastName: "Tract" } } };
}

// The workflow's set-up; returns the ids the generic requests use.
export async function setup(api, send) {
  const ids = { tenant: api.tenant, org: api.org };
  let r = await send("POST", `${SR}/tenant/mixins/`, { body: profileMixin(api.tenant), accept: XED });
  ids.fieldGroupId = r.status === 201 && r.json ? r.json.$id : undefined;
  // A second field group, through the fieldgroups path, for that path's own operations (and a
  // delete that finds it: the first one goes with the mixins path's delete).
  r = await send("POST", `${SR}/tenant/fieldgroups`, { body: { ...profileMixin(api.tenant), title: "Contract Field Group" }, accept: XED });
  ids.fieldGroupId2 = r.json && r.json.$id;
  // A tenant class and data type (the guide's examples, trimmed), for their operations by id.
  const classBody = {
    title: "Contract Property", description: "contract test", type: "object",
    "meta:extends": ["https://ns.adobe.com/xdm/data/record"],
    definitions: { property: { properties: { ["_" + api.tenant]: { type: "object", properties: {
      propertyId: { title: "Property ID", type: "string" } } } } } },
    allOf: [{ $ref: "https://ns.adobe.com/xdm/data/record" }, { $ref: "#/definitions/property" }] };
  r = await send("POST", `${SR}/tenant/classes`, { accept: XED, body: classBody });
  ids.classId = r.status === 201 && r.json ? r.json.$id : undefined;
  const dataTypeBody = {
    title: "Contract Construction", description: "contract test", type: "object",
    definitions: { construction: { properties: { yearBuilt: { title: "Year Built", type: "integer" } } } },
    allOf: [{ $ref: "#/definitions/construction" }] };
  r = await send("POST", `${SR}/tenant/datatypes`, { accept: XED, body: dataTypeBody });
  ids.dataTypeId = r.status === 201 && r.json ? r.json.$id : undefined;
  // Their updates with bodies that fit them (the spec's examples name resources nobody has).
  const patchDescription = [{ op: "replace", path: "/description", value: "contract test, patched" }];
  if (ids.classId) {
    const p = `${SR}/tenant/classes/${encodeURIComponent(ids.classId)}`;
    await send("PUT", p, { accept: XED, body: { ...classBody, description: "contract test, replaced" } });
    await send("PATCH", p, { accept: XED, body: patchDescription });
  }
  if (ids.dataTypeId) {
    const p = `${SR}/tenant/datatypes/${encodeURIComponent(ids.dataTypeId)}`;
    await send("PUT", p, { accept: XED, body: { ...dataTypeBody, description: "contract test, replaced" } });
    await send("PATCH", p, { accept: XED, body: patchDescription });
  }
  r = await send("POST", `${SR}/tenant/schemas/`, { accept: XED, body: {
    type: "object", title: "Contract Loyalty Profiles", description: "Profile data plus loyalty data",
    allOf: [{ $ref: "https://ns.adobe.com/xdm/context/profile" },
            { $ref: "https://ns.adobe.com/xdm/context/profile-personal-details" },
            { $ref: "https://ns.adobe.com/xdm/context/profile-person-details" },
            { $ref: ids.fieldGroupId }],
    "meta:immutableTags": ["union"] } });
  ids.schemaId = r.json && r.json.$id;
  r = await send("POST", `${SR}/tenant/descriptors`, { accept: XED, body: {
    "@type": "xdm:descriptorIdentity", "xdm:sourceSchema": ids.schemaId, "xdm:sourceVersion": 1,
    "xdm:sourceProperty": `/_${api.tenant}/loyaltyID`, "xdm:namespace": "Email", "xdm:property": "xdm:code",
    "xdm:isPrimary": true } });
  ids.descriptorId = r.json && r.json["@id"];
  if (ids.descriptorId) { // replaced with the same body: the update's answer on a real descriptor
    await send("PUT", `${SR}/tenant/descriptors/${ids.descriptorId}`, { accept: XED, body: {
      "@type": "xdm:descriptorIdentity", "xdm:sourceSchema": ids.schemaId, "xdm:sourceVersion": 1,
      "xdm:sourceProperty": `/_${api.tenant}/loyaltyID`, "xdm:namespace": "Email", "xdm:property": "xdm:code",
      "xdm:isPrimary": true } });
  }
  r = await send("POST", `${CATALOG}/dataSets`, { body: {
    name: "Contract Loyalty Profiles", description: "contract test",
    schemaRef: { id: ids.schemaId, contentType: XED_FULL },
    fileDescription: { persisted: true, containerFormat: "parquet", format: "parquet" },
    tags: { unifiedIdentity: ["enabled:true"], unifiedProfile: ["enabled:true"] } } });
  ids.datasetId = Array.isArray(r.json) ? String(r.json[0]).replace(/^@\/dataSets\//, "") : undefined;

  // Batch ingestion: create, upload one JSON file, complete; then Catalog sees the batch.
  r = await send("POST", `${IMPORT}/batches`, { body: { datasetId: ids.datasetId,
    inputFormat: { format: "json", isMultiLineJson: false } } });
  ids.batchId = r.json && r.json.id;
  await send("PUT", `${IMPORT}/batches/${ids.batchId}/datasets/${ids.datasetId}/files/contract.json`, {
    body: JSON.stringify(entity(api.tenant, MEMBER)) + "\n", contentType: "application/octet-stream" });
  await send("POST", `${IMPORT}/batches/${ids.batchId}?action=COMPLETE`);
  await send("GET", `${CATALOG}/batches/${ids.batchId}`);
  // A second batch: a large-file upload in two chunks (the guide's INITIALIZE, PATCH with
  // Content-Range, HEAD, COMPLETE), its preview, then ABORT.
  r = await send("POST", `${IMPORT}/batches`, { body: { datasetId: ids.datasetId, inputFormat: { format: "json" } } });
  const large = `${IMPORT}/batches/${r.json && r.json.id}/datasets/${ids.datasetId}/files/contract-large.json`;
  const data = JSON.stringify(entity(api.tenant, "contract4@example.com")) + "\n";
  const half = Math.floor(data.length / 2);
  await send("POST", `${large}?action=INITIALIZE`, { body: "", contentType: "application/json" });
  for (const [a, b] of [[0, half], [half, data.length]]) {
    await send("PATCH", large, { body: data.slice(a, b), contentType: "application/octet-stream",
      extra: { "Content-Range": `bytes ${a}-${b - 1}` } });
  }
  await send("HEAD", large);
  await send("POST", `${large}?action=COMPLETE`, { body: "", contentType: "application/json" });
  await send("GET", `${IMPORT}/batches/${r.json && r.json.id}/datasets/${ids.datasetId}/preview?format=json`);
  await send("POST", `${IMPORT}/batches/${r.json && r.json.id}?action=ABORT`);

  // Flow Service: a streaming connection, its source and target connections and the dataflow.
  r = await send("POST", `${FLOWS}/connections`, { body: {
    name: "Contract streaming", providerId: "521eee4d-8cbe-4906-bb48-fb6bd4450033", description: "contract test",
    connectionSpec: STREAMING_SPEC,
    auth: { specName: "Streaming Connection", params: { sourceId: "Contract streaming", dataType: "xdm",
      name: "Contract streaming", authenticationRequired: false } } } });
  ids.connectionId = r.json && r.json.id;
  r = await send("GET", `${FLOWS}/connections/${ids.connectionId}`);
  const params = r.json && r.json.items && r.json.items[0] && r.json.items[0].auth && r.json.items[0].auth.params;
  ids.inletId = params && params.inletId;
  r = await send("POST", `${FLOWS}/sourceConnections`, { body: { name: "Contract source",
    baseConnectionId: ids.connectionId, connectionSpec: STREAMING_SPEC,
    data: { format: "json" } } });
  ids.sourceConnectionId = r.json && r.json.id;
  r = await send("POST", `${FLOWS}/targetConnections`, { body: { name: "Contract target",
    data: { format: "parquet_xdm", schema: { id: ids.schemaId, version: "application/vnd.adobe.xed-full+json;version=1.0" } },
    params: { dataSetId: ids.datasetId }, connectionSpec: DATALAKE_SPEC } });
  ids.targetConnectionId = r.json && r.json.id;
  r = await send("POST", `${FLOWS}/flows`, { body: { name: "Contract flow", flowSpec: FLOW_SPEC,
    sourceConnectionIds: [ids.sourceConnectionId], targetConnectionIds: [ids.targetConnectionId] } });
  ids.flowId = r.json && r.json.id;

  // Data Prep: a mapping set for the contract schema, validated, previewed, updated (version 1).
  const DP = "/data/foundation/conversion";
  const mappingSet = { outputSchema: { schemaRef: { id: ids.schemaId, contentType: XED_FULL } }, mappings: [
    { sourceType: "ATTRIBUTE", source: "email", destination: `_${api.tenant}.loyaltyID` },
    { sourceType: "EXPRESSION", source: "upper(first)", destination: "person.name.firstName" }] };
  r = await send("POST", `${DP}/mappingSets`, { body: mappingSet });
  ids.mappingSetId = r.json && r.json.id;
  await send("POST", `${DP}/mappingSets/validate`, { body: mappingSet });
  await send("POST", `${DP}/mappingSets/preview`, { body: { data: [{ email: MEMBER, first: "ada" }], mappingSet } });
  await send("PUT", `${DP}/mappingSets/${ids.mappingSetId}`, { body: mappingSet });
  r = await send("GET", `${DP}/mappingSets/${ids.mappingSetId}/mappings`);
  ids.mappingId = Array.isArray(r.json) && r.json[0] ? r.json[0].id : undefined;
  await send("POST", `${DP}/languages/el/validate`, { body: { expression: "upper(first)" } });

  // Streaming: one message, then a batch of two.
  await send("POST", `/collection/${ids.inletId}?syncValidation=true`, { auth: false,
    body: message(ids, entity(api.tenant, MEMBER)) });
  await send("POST", `/collection/batch/${ids.inletId}`, { auth: false, body: { messages: [
    message(ids, entity(api.tenant, "contract2@example.com")), message(ids, entity(api.tenant, "contract3@example.com"))] } });
  // the dataflow's run (one per --batch-window), once the emulator has validated the messages
  for (let i = 0; i < 100 && !ids.runId; i++) {
    r = await send("GET", `/data/foundation/flowservice/runs?property=flowId==${ids.flowId}`);
    ids.runId = r.json && Array.isArray(r.json.items) && r.json.items[0] ? r.json.items[0].id : undefined;
    if (!ids.runId) await new Promise((done) => setTimeout(done, 50));
  }

  // Identity Service: the namespaces, and one custom namespace.
  r = await send("GET", "/data/core/idnamespace/identities");
  const email = Array.isArray(r.json) && r.json.find((n) => n.code === "Email");
  ids.namespaceId = email ? String(email.id) : "6";
  r = await send("POST", "/data/core/idnamespace/identities", { body: {
    name: "Contract loyalty", code: "ContractLoyalty", description: "contract test", idType: "Cross_device" } });
  ids.customNamespaceId = r.json && r.json.id;

  // Profile: the member streamed above.
  await send("GET", "/data/core/ups/access/entities?schema.name=_xdm.context.profile" +
    `&entityId=${encodeURIComponent(MEMBER)}&entityIdNS=email`);
  // Profile: the sandbox's merge policy, and a delete job on a second (empty) Profile dataset, so
  // the job operations answer about a real job without emptying the member's profile.
  r = await send("GET", "/data/core/ups/config/mergePolicies");
  ids.mergePolicyId = r.json && r.json.children && r.json.children[0] && r.json.children[0].id;
  r = await send("POST", `${CATALOG}/dataSets`, { body: {
    name: "Contract Profile job", description: "contract test", schemaRef: { id: ids.schemaId, contentType: XED_FULL },
    tags: { unifiedIdentity: ["enabled:true"], unifiedProfile: ["enabled:true"] } } });
  ids.jobDatasetId = Array.isArray(r.json) ? String(r.json[0]).replace(/^@\/dataSets\//, "") : undefined;
  r = await send("POST", "/data/core/ups/system/jobs", { body: { dataSetId: ids.jobDatasetId } });
  ids.profileJobId = r.json && r.json.id;
  return ids;
}

// Path parameter values, by spec file and name (then by name alone). Schema Registry operations
// under {CONTAINER_ID} are sent for both containers: the tenant's own resources, and Adobe's
// global ones (a container without a resource of that kind gets no request).
const GLOBAL = {
  CONTAINER_ID: "global", CLASS_ID: "https://ns.adobe.com/xdm/context/profile",
  DATA_TYPE_ID: "https://ns.adobe.com/xdm/context/person-name",
  FIELD_GROUP_ID: "https://ns.adobe.com/xdm/context/profile-person-details",
  MIXIN_ID: "https://ns.adobe.com/xdm/context/profile-person-details",
  SCHEMA_ID: null, DESCRIPTOR_ID: null,
};

function pathValue(ids, file, name, method, container) {
  if (container === "global" && name in GLOBAL) return GLOBAL[name];
  // Sandbox administration never touches prod: those requests name a sandbox nobody has.
  if (name === "sandboxName" && method !== "GET") return "contract-no-such-sandbox";
  const byName = {
    CONTAINER_ID: "tenant", FIELD_GROUP_ID: ids.fieldGroupId2, MIXIN_ID: ids.fieldGroupId,
    SCHEMA_ID: ids.schemaId, RESOURCE_ID: ids.schemaId, DESCRIPTOR_ID: ids.descriptorId,
    CLASS_ID: ids.classId, DATA_TYPE_ID: ids.dataTypeId,
    BEHAVIOR_ID: "https://ns.adobe.com/xdm/data/record", UNION_ID: "https://ns.adobe.com/xdm/context/profile__union",
    batchId: ids.batchId, BATCH_ID: ids.batchId, datasetId: ids.datasetId, DATASET_ID: ids.datasetId,
    filePath: "contract.json", FIELD: "status", tagNamespace: "unifiedProfile",
    dataSetFileId: ids.batchId && `${ids.batchId}-1`, // diagnostics.lua's file of the batch
    BASE_CONNECTION_ID: ids.connectionId, CONNECTION_SPEC_ID: STREAMING_SPEC.id, FLOW_ID: ids.flowId,
    FLOW_SPEC_ID: FLOW_SPEC.id, SOURCE_CONNECTION_ID: ids.sourceConnectionId,
    TARGET_CONNECTION_ID: ids.targetConnectionId, CONNECTION_ID: ids.inletId, sandboxName: "prod",
    MAPPING_SET_ID: ids.mappingSetId, MAPPING_ID: ids.mappingId, RUN_ID: ids.runId,
  };
  const byFile = {
    "catalog.yaml id": ids.datasetId, "data-access.yaml id": ids.datasetId,
    // the update goes to the custom namespace (Adobe's standard ones cannot change)
    "identity-service.yaml ID": method === "PUT" ? ids.customNamespaceId : ids.namespaceId,
    "profile.yaml ID": ids.profileJobId, "profile.yaml mergePolicyId": ids.mergePolicyId,
  };
  const v = byFile[`${file} ${name}`] ?? byName[name];
  if (v === null || v === undefined) return method === "GET" ? null : UNKNOWN;
  return String(v);
}

// Required query parameters: documented enum's first value, default, or these.
const QUERY = {
  "batch-ingestion.yaml POST /batches/{batchId}": "action=COMPLETE",
  "batch-ingestion.yaml POST /batches/{batchId}/datasets/{datasetId}/files/{filePath}": "action=INITIALIZE",
  "batch-ingestion.yaml GET /batches/{batchId}/datasets/{datasetId}/preview": "format=json",
  "profile.yaml GET /ups/access/entities": `schema.name=_xdm.context.profile&entityId=${encodeURIComponent(MEMBER)}&entityIdNS=email`,
  // a streamed member's profile (requests run in order: deletions last)
  "profile.yaml DELETE /ups/access/entities":
    `schema.name=_xdm.context.profile&entityId=${encodeURIComponent("contract3@example.com")}&entityIdNS=email`,
  "identity-service.yaml GET /identity/cluster/members": `namespace=Email&id=${encodeURIComponent(MEMBER)}`,
  "identity-service.yaml GET /identity/identity": `namespace=email&id=${encodeURIComponent(MEMBER)}`,
  "data-prep.yaml GET /mappingSets": "limit=10&start=0",
  "observability-insights.yaml GET /metrics": "metric=timeseries.ingestion.dataset.recordsuccess.count",
  "data-access.yaml HEAD /files/{dataSetFileId}": "path=part-00000.json",
};

// Request bodies where the spec documents none (the guides' forms: JSON Patch, search filters).
const PATCH_BODY = JSON.stringify([{ op: "add", path: "/description", value: "contract patch" }]);
const BODY = {
  // bodies that name the objects created first, where the spec's example names none
  "identity-service.yaml PUT /idnamespace/identities/{ID}": () => JSON.stringify({ name: "Contract loyalty members", code: "ContractLoyalty", idType: "CROSS_DEVICE", description: "contract test" }),
  "identity-service.yaml POST /identity/clusters/members": () => JSON.stringify({ compositeXidsWithNamespace: [{ namespace: "Email", id: MEMBER }] }),
  "identity-service.yaml POST /identity/v2/graph": () => JSON.stringify({ composite_xids: [{ ns: "Email", id: MEMBER }], projection_type: "graph" }),
  "profile.yaml POST /ups/system/jobs": (ids) => JSON.stringify({ dataSetId: ids.jobDatasetId }),
  "profile.yaml POST /ups/config/mergePolicies/bulk-get": (ids) => JSON.stringify({ ids: [{ id: ids.mergePolicyId }] }),
  "flow-service.yaml PATCH /connections/{BASE_CONNECTION_ID}/": PATCH_BODY,
  "flow-service.yaml PATCH /sourceConnections/{SOURCE_CONNECTION_ID}": PATCH_BODY,
  "flow-service.yaml PATCH /targetConnections/{TARGET_CONNECTION_ID}": PATCH_BODY,
  "flow-service.yaml PATCH /flows/{FLOW_ID}": PATCH_BODY,
  "flow-service.yaml POST /connections/search": JSON.stringify({ queryString: `connectionSpec.id==${STREAMING_SPEC.id}` }),
  "flow-service.yaml POST /flows/search": JSON.stringify({ queryString: `flowSpec.id==${FLOW_SPEC.id}` }),
  "flow-service.yaml POST /flowSpecs/search": JSON.stringify({ queryString: `id==${FLOW_SPEC.id}` }),
  "catalog.yaml POST /batches": (ids) => JSON.stringify({ status: "loading", externalId: "contract",
    relatedObjects: [{ type: "dataSet", id: ids.datasetId }], inputFormat: { format: "json" } }),
  "catalog.yaml POST /batches/{BATCH_ID}": (ids) => JSON.stringify({ status: "loading",
    relatedObjects: [{ type: "dataSet", id: ids.datasetId }] }),
  "catalog.yaml PUT /batches/{BATCH_ID}": JSON.stringify({ status: "success", inputFormat: { format: "json" } }),
  "catalog.yaml PATCH /batches/{BATCH_ID}": JSON.stringify({ tags: { contract: ["patched"] } }),
  "catalog.yaml PATCH /v2/dataSets/{DATASET_ID}": JSON.stringify({ description: "contract v2",
    extensions: { adobe_lakeHouse: { rowExpiration: { ttlValue: "P3Y" } } } }),
  // metricsRequest's example is spread over its properties' `example` values: put together here
  "observability-insights.yaml POST /metrics": JSON.stringify({
    start: "2020-07-14 00:00:00+00:00", end: "2020-07-22 00:00:00+00:00", granularity: "DAY",
    metrics: [
      { name: "timeseries.ingestion.dataset.recordsuccess.count", aggregator: "sum",
        filters: [{ name: "dataSetId", value: "5edcfb2fbb642119194c7d94|5eddb21420f516191b7a8dad", groupBy: true }] },
      { name: "timeseries.ingestion.dataset.dailysize", aggregator: "sum",
        filters: [{ name: "dataSetId", value: "5eddb21420f516191b7a8dad", groupBy: false }] }] }),
};

function query(op) {
  if (QUERY[op.key] !== undefined) return QUERY[op.key];
  const parts = [];
  for (const p of op.parameters) {
    if (p.in !== "query" || !p.required) continue;
    const s = p.schema || {};
    const v = s.enum ? s.enum[0] : (s.default !== undefined ? s.default : "contract");
    parts.push(`${encodeURIComponent(p.name)}=${encodeURIComponent(v)}`);
  }
  return parts.join("&");
}

// fill(op, ids, mode) -> the path with its parameters ("tenant", "global" or "unknown" ids), or
// null when this container has nothing to ask for.
function fill(op, ids, mode) {
  let missing = false;
  const p = op.full.replace(/\{([^}]+)\}/g, (_, name) => {
    if (mode === "unknown") return name === "CONTAINER_ID" ? "tenant" : UNKNOWN;
    const v = pathValue(ids, op.file, name, op.method, mode);
    if (v === null) missing = true;
    return encodeURIComponent(v ?? "");
  });
  return missing ? null : p;
}

// Required header parameters (beyond the Platform headers every request carries), by the name of
// the spec's shared parameter they come from, else the schema's enum or default.
const HEADER_BY_COMPONENT = {
  accept: "application/vnd.adobe.xed+json; version=1",
  acceptListing: "application/vnd.adobe.xed-id+json",
  acceptDescriptors: "application/vnd.adobe.xdm+json",
};
const PLATFORM_HEADERS = new Set(["authorization", "x-api-key", "x-gw-ims-org-id", "x-sandbox-name", "content-type"]);

function headers(op) {
  const out = {};
  for (const p of op.parameters) {
    if (p.in !== "header" || !p.required || PLATFORM_HEADERS.has(p.name.toLowerCase())) continue;
    const component = (p.schemaPtr.match(/^#\/components\/parameters\/([^/]+)\/schema$/) || [])[1];
    const s = p.schema || {};
    const v = HEADER_BY_COMPONENT[component] ?? (s.enum ? s.enum[0] : s.default);
    if (v !== undefined) out[p.name] = String(v);
  }
  return out;
}

const RANK = { GET: 0, HEAD: 0, POST: 1, PUT: 2, PATCH: 3, DELETE: 4 };

// Streaming operations carry no Platform headers (an unauthenticated inlet).
function authFor(op) { return op.file !== "streaming-ingestion.yaml"; }

// The generic requests, in the order they are sent: [{op, method, path, body, contentType, variant}]
export function plan(operations, ids, example) {
  const out = [];
  const ordered = [...operations].sort((a, b) => (RANK[a.method] - RANK[b.method]) || a.key.localeCompare(b.key));
  const deletes = ordered.filter((op) => op.method === "DELETE");
  for (const op of ordered) {
    const q = query(op);
    const withQuery = (p) => p + (q ? "?" + q : "");
    const base = { op, method: op.method, auth: authFor(op), headers: headers(op) };
    const given = typeof BODY[op.key] === "function" ? BODY[op.key](ids) : BODY[op.key];
    const ex = given !== undefined ? ["application/json", given]
      : ["POST", "PUT", "PATCH"].includes(op.method) ? example(op) : null;
    const body = { body: ex ? ex[1] : undefined, contentType: ex ? ex[0] : undefined };
    const documented = op.def.responses || {};
    const tenant = fill(op, ids, "tenant");
    if (op.method !== "DELETE") {
      // A Flow Service PATCH names the object's current etag (If-Match): run.mjs reads it first.
      const etagOf = op.method === "PATCH" && op.file === "flow-service.yaml" && tenant ? tenant.replace(/\/$/, "") : undefined;
      if (tenant) out.push({ ...base, ...body, variant: "valid", path: withQuery(tenant), etagOf });
      if (op.method === "GET" && op.names.includes("CONTAINER_ID")) {
        const global = fill(op, ids, "global");
        if (global) out.push({ ...base, variant: "global container", path: withQuery(global) });
      }
      if (op.names.length && "404" in documented) {
        out.push({ ...base, ...body, variant: "unknown id", path: withQuery(fill(op, ids, "unknown")) });
      }
      if (q && "400" in documented && tenant && op.parameters.some((p) => p.in === "query" && p.required)) {
        out.push({ ...base, ...body, variant: "no query", path: tenant });
      }
      if (["POST", "PUT", "PATCH"].includes(op.method) && "400" in documented && op.def.requestBody && tenant) {
        out.push({ ...base, variant: "empty body", path: withQuery(tenant), body: "{}", contentType: "application/json" });
      }
    }
    if ("401" in documented && base.auth) {
      out.push({ ...base, ...body, auth: false, variant: "no credentials",
                 path: withQuery(tenant || fill(op, ids, "unknown")) });
    }
  }
  // Deletions last, created objects innermost first (the flow before its connections).
  const order = ["flows", "sourceConnections", "targetConnections", "connections", "descriptors", "schemas", "mixins", "fieldgroups"];
  const rank = (op) => { const i = order.findIndex((w) => op.path.includes("/" + w + "/")); return i < 0 ? order.length : i; };
  deletes.sort((a, b) => rank(a) - rank(b) || a.key.localeCompare(b.key));
  for (const op of deletes) {
    const q = query(op);
    const withQuery = (p) => p + (q ? "?" + q : "");
    const base = { op, method: op.method, auth: true, headers: headers(op) };
    if (op.names.length && "404" in (op.def.responses || {})) {
      out.push({ ...base, variant: "unknown id", path: withQuery(fill(op, ids, "unknown")) });
    }
    out.push({ ...base, variant: "valid", path: withQuery(fill(op, ids, "tenant")) });
  }
  return out;
}
