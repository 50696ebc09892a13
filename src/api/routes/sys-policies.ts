import type { FastifyInstance, FastifyReply, FastifyRequest, HTTPMethods } from "fastify";
import { KeywardError, missingField } from "../../errors.ts";
import { MAX_POLICY_NAME_LENGTH } from "../../policy/builtin.ts";
import type { PolicyStore } from "../../policy/store.ts";
import { envelope } from "../envelope.ts";

export interface PolicyRouteOptions {
  /**
   * Returns the policy names of a token, or undefined when the token is not
   * valid. `POST /v1/sys/capabilities` is registered only when this is given.
   */
  lookupPolicies?: (token: string) => Promise<string[] | undefined>;
}

/** Maximum length of a policy text in characters; the server's body limit usually applies first. */
export const MAX_POLICY_TEXT_LENGTH = 1024 * 1024;
/** Maximum number of paths in one capabilities request. */
const MAX_CAPABILITY_PATHS = 256;
const MAX_PATH_LENGTH = 4096;

const TAGS = ["sys"];
const WRITE: HTTPMethods[] = ["POST", "PUT"];

/**
 * Boolean strings as Go's `strconv.ParseBool` reads them, which Vault uses
 * for `list`. node-vault, for one, sends `list=1`.
 */
const TRUE_STRINGS = ["1", "t", "T", "TRUE", "true", "True"];
const FALSE_STRINGS = ["0", "f", "F", "FALSE", "false", "False"];

const BASE64_PATTERN = /^[A-Za-z0-9+/]+={0,2}$/;

const nameParams = {
  type: "object",
  additionalProperties: false,
  required: ["name"],
  properties: {
    name: {
      type: "string",
      minLength: 1,
      maxLength: MAX_POLICY_NAME_LENGTH,
      description:
        'Policy name: a-z, 0-9, "_", "." and "-"; upper-case letters are lowercased, as in Vault.',
    },
  },
} as const;

const listQuery = {
  type: "object",
  additionalProperties: false,
  properties: {
    list: {
      type: "string",
      enum: [...TRUE_STRINGS, ...FALSE_STRINGS],
      description: "Set to true (or 1) to list.",
    },
  },
} as const;

const policyText = (description: string) =>
  ({ type: "string", maxLength: MAX_POLICY_TEXT_LENGTH, description }) as const;

const pathList = (description: string) =>
  ({
    type: "array",
    maxItems: MAX_CAPABILITY_PATHS,
    items: { type: "string", maxLength: MAX_PATH_LENGTH },
    description,
  }) as const;

const capabilityPaths = {
  paths: pathList("Paths to query, relative to /v1/; a comma-separated string is also accepted."),
  path: pathList("Older name of `paths`, still accepted by Vault."),
} as const;

interface NameParams {
  name: string;
}

interface CapabilitiesBody {
  paths?: string[];
  path?: string[];
  token?: string;
}

/**
 * Returns the policy text of a write. Vault accepts it base64-encoded too:
 * a text that is valid base64 of UTF-8 text is decoded. A real HCL or JSON
 * policy always contains a space, quote or brace, so it is never base64.
 */
function decodePolicyText(text: string): string {
  if (text.length === 0 || text.length % 4 !== 0 || !BASE64_PATTERN.test(text)) return text;
  const bytes = Buffer.from(text, "base64");
  const decoded = bytes.toString("utf8");
  return Buffer.from(decoded, "utf8").equals(bytes) ? decoded : text;
}

/** Collects the paths of a capabilities request from `paths`, else `path`, splitting each entry at commas as Vault does. */
function requestedPaths(body: CapabilitiesBody): string[] {
  const entries = body.paths && body.paths.length > 0 ? body.paths : (body.path ?? []);
  const paths = entries
    .flatMap((entry) => entry.split(","))
    .map((path) => path.trim())
    .filter((path) => path !== "");
  if (paths.length === 0) throw missingField("paths");
  if (paths.length > MAX_CAPABILITY_PATHS) {
    throw new KeywardError(
      "invalid_field",
      `too many paths: at most ${MAX_CAPABILITY_PATHS} are allowed per request`,
      {
        field: "paths",
      },
    );
  }
  return paths;
}

/**
 * Returns the policy-check path of a route that names a policy, with the
 * name lowercased as the store lowercases it. A rule that denies
 * `sys/policies/acl/admin` must also deny `sys/policies/acl/ADMIN`, which
 * writes the same policy.
 */
function namedPolicyPath(prefix: string) {
  return (request: FastifyRequest) =>
    `${prefix}/${(request.params as Partial<NameParams>).name?.toLowerCase() ?? ""}`;
}

/** A path that names one policy, in either API: the prefix and the name. */
const NAMED_POLICY = /^(sys\/policies\/acl|sys\/policy)\/([^/]+)$/;

/**
 * Returns the path the policy check uses for a request to `path`: a
 * policy's name lowercased, as the routes above check it, and every other
 * path as it is. Capabilities are computed for this path, so they show what
 * the check would decide.
 */
function checkedPath(path: string): string {
  const named = NAMED_POLICY.exec(path);
  return named === null ? path : `${named[1]}/${named[2]!.toLowerCase()}`;
}

const aclPolicyPath = namedPolicyPath("sys/policies/acl");
const legacyPolicyPath = namedPolicyPath("sys/policy");

function sendData(request: FastifyRequest, reply: FastifyReply, data: object) {
  return reply.code(200).send(envelope(data, { requestId: request.id }));
}

/**
 * Sends data both in Vault's envelope and at the top level, as Vault's older
 * `sys/policy` and `sys/capabilities` endpoints do. Clients such as
 * node-vault read the top-level fields.
 */
function sendLegacyData(request: FastifyRequest, reply: FastifyReply, data: object) {
  return reply.code(200).send({ ...data, ...envelope(data, { requestId: request.id }) });
}

function rejectUnlessListing(list: string | undefined) {
  if (list === undefined || !TRUE_STRINGS.includes(list)) {
    throw new KeywardError("method_not_allowed", "listing policies needs GET with list=true");
  }
}

/**
 * ACL policy management (`sys/policies/acl`, and the older `sys/policy`
 * that node-vault uses) and capability queries (`sys/capabilities-self`,
 * `sys/capabilities`), with Vault's paths and shapes. Authentication and
 * authorisation come from the app's global hooks.
 */
export async function registerPolicyRoutes(
  app: FastifyInstance,
  store: PolicyStore,
  options: PolicyRouteOptions = {},
) {
  const readPolicy = async (name: string) => {
    const policy = await store.get(name);
    if (policy === undefined) throw new KeywardError("not_found", `policy "${name}" not found`);
    return policy;
  };

  // NOTE: Node's HTTP parser rejects the LIST method before Fastify receives it
  // (see app.ts), so this route exists only on servers that support it.
  if (app.supportedMethods.includes("LIST")) {
    app.route({
      method: "LIST" as HTTPMethods,
      url: "/v1/sys/policies/acl",
      schema: { tags: TAGS, summary: "List ACL policy names." },
      handler: async (request, reply) => sendData(request, reply, { keys: await store.list() }),
    });
  }

  app.route<{ Querystring: { list?: string } }>({
    method: "GET",
    url: "/v1/sys/policies/acl",
    schema: {
      tags: TAGS,
      summary: "List ACL policy names (GET with list=true).",
      description: "Returns every policy name in `keys`, sorted, including `default` and `root`.",
      querystring: listQuery,
    },
    handler: async (request, reply) => {
      rejectUnlessListing(request.query.list);
      return sendData(request, reply, { keys: await store.list() });
    },
  });

  app.route<{ Params: NameParams }>({
    method: "GET",
    url: "/v1/sys/policies/acl/:name",
    config: { aclPath: aclPolicyPath },
    schema: {
      tags: TAGS,
      summary: "Read an ACL policy.",
      description: "Returns the policy's `name` and its text as written, in `policy`.",
      params: nameParams,
    },
    handler: async (request, reply) => {
      const policy = await readPolicy(request.params.name);
      return sendData(request, reply, { name: policy.name, policy: policy.raw });
    },
  });

  app.route<{ Params: NameParams; Body: { policy: string } }>({
    method: WRITE,
    url: "/v1/sys/policies/acl/:name",
    config: { aclPath: aclPolicyPath },
    schema: {
      tags: TAGS,
      summary: "Create or replace an ACL policy.",
      description:
        "The policy is HCL or JSON, optionally base64-encoded. A malformed policy gets `invalid_policy` with its line and column. `root` cannot be written.",
      params: nameParams,
      body: {
        type: "object",
        additionalProperties: false,
        required: ["policy"],
        properties: { policy: policyText("The policy document, HCL or JSON.") },
      },
    },
    handler: async (request, reply) => {
      await store.put(request.params.name, decodePolicyText(request.body.policy));
      return reply.code(204).send();
    },
  });

  app.route<{ Params: NameParams }>({
    method: "DELETE",
    url: "/v1/sys/policies/acl/:name",
    config: { aclPath: aclPolicyPath },
    schema: {
      tags: TAGS,
      summary: "Delete an ACL policy.",
      description:
        "Deleting a policy that does not exist succeeds. `root` and `default` cannot be deleted.",
      params: nameParams,
    },
    handler: async (request, reply) => {
      await store.delete(request.params.name);
      return reply.code(204).send();
    },
  });

  app.route<{ Querystring: { list?: string } }>({
    method: "GET",
    url: "/v1/sys/policy",
    schema: {
      tags: TAGS,
      summary: "List policy names (older API).",
      description:
        "Returns every policy name in `policies` and `keys`, in `data` and at the top level.",
      querystring: listQuery,
    },
    handler: async (request, reply) => {
      const names = await store.list();
      return sendLegacyData(request, reply, { policies: names, keys: names });
    },
  });

  app.route<{ Params: NameParams }>({
    method: "GET",
    url: "/v1/sys/policy/:name",
    config: { aclPath: legacyPolicyPath },
    schema: {
      tags: TAGS,
      summary: "Read a policy (older API).",
      description: "Returns `name` and the policy text in `rules`, in `data` and at the top level.",
      params: nameParams,
    },
    handler: async (request, reply) => {
      const policy = await readPolicy(request.params.name);
      return sendLegacyData(request, reply, { name: policy.name, rules: policy.raw });
    },
  });

  app.route<{ Params: NameParams; Body: { policy?: string; rules?: string } }>({
    method: WRITE,
    url: "/v1/sys/policy/:name",
    config: { aclPath: legacyPolicyPath },
    schema: {
      tags: TAGS,
      summary: "Create or replace a policy (older API).",
      description: "Takes the policy text in `policy` or, as older clients send it, in `rules`.",
      params: nameParams,
      body: {
        type: "object",
        additionalProperties: false,
        properties: {
          policy: policyText("The policy document, HCL or JSON."),
          rules: policyText("Older name of `policy`; used when `policy` is absent."),
        },
      },
    },
    handler: async (request, reply) => {
      const text = request.body.policy ?? request.body.rules;
      if (text === undefined) throw missingField("policy");
      await store.put(request.params.name, decodePolicyText(text));
      return reply.code(204).send();
    },
  });

  app.route<{ Params: NameParams }>({
    method: "DELETE",
    url: "/v1/sys/policy/:name",
    config: { aclPath: legacyPolicyPath },
    schema: {
      tags: TAGS,
      summary: "Delete a policy (older API).",
      params: nameParams,
    },
    handler: async (request, reply) => {
      await store.delete(request.params.name);
      return reply.code(204).send();
    },
  });

  const capabilitiesReply = async (
    request: FastifyRequest,
    reply: FastifyReply,
    policies: string[],
    paths: string[],
  ) => {
    const acl = await store.acl(policies);
    // Object.fromEntries keeps a path such as `__proto__` as an ordinary key.
    const entries = paths.map((path) => [path, acl.capabilities(checkedPath(path))] as const);
    // Vault adds `capabilities` when one path is requested, for older clients.
    if (entries.length === 1) entries.push(["capabilities", entries[0]![1]]);
    return sendLegacyData(request, reply, Object.fromEntries(entries));
  };

  app.route<{ Body: CapabilitiesBody }>({
    method: WRITE,
    url: "/v1/sys/capabilities-self",
    schema: {
      tags: TAGS,
      summary: "Read the calling token's capabilities on paths.",
      description:
        'Returns each path\'s capabilities, sorted; `["root"]` for a root token and `["deny"]` where nothing is granted.',
      body: { type: "object", additionalProperties: false, properties: capabilityPaths },
    },
    handler: async (request, reply) => {
      const identity = request.identity;
      if (identity === undefined) throw new KeywardError("permission_denied", "permission denied");
      return capabilitiesReply(request, reply, identity.policies, requestedPaths(request.body));
    },
  });

  const lookupPolicies = options.lookupPolicies;
  if (lookupPolicies === undefined) return;

  app.route<{ Body: CapabilitiesBody & { token: string } }>({
    method: WRITE,
    url: "/v1/sys/capabilities",
    schema: {
      tags: TAGS,
      summary: "Read a token's capabilities on paths.",
      description:
        "Like `sys/capabilities-self`, for the token in the body. An invalid token gets 400, as in Vault.",
      body: {
        type: "object",
        additionalProperties: false,
        required: ["token"],
        properties: {
          token: {
            type: "string",
            minLength: 1,
            maxLength: 1024,
            description: "The token to query.",
          },
          ...capabilityPaths,
        },
      },
    },
    handler: async (request, reply) => {
      const paths = requestedPaths(request.body);
      const policies = await lookupPolicies(request.body.token);
      if (policies === undefined) {
        throw new KeywardError("invalid_field", "the token in the request body is not valid", {
          field: "token",
        });
      }
      return capabilitiesReply(request, reply, policies, paths);
    },
  });
}
