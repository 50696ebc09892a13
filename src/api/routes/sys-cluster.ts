import type { FastifyInstance } from "fastify";
import type { ClusterMember } from "../../cluster/cluster.ts";
import type { Keyward } from "../../core/keyward.ts";
import { envelope } from "../envelope.ts";

/** Converts one node to Vault's `sys/ha-status` shape, with Keyward's additions. */
function nodeView(member: ClusterMember) {
  return {
    hostname: member.nodeId,
    node_id: member.nodeId,
    api_address: member.apiAddress,
    cluster_address: "",
    active_node: member.leader && member.up,
    leader: member.leader && member.up,
    // As in Vault, the responding node reports no echo of its own.
    last_echo: member.self ? null : member.heartbeatAt,
    heartbeat_age_ms: member.heartbeatAgeMs,
    up: member.up,
    sealed: member.sealed,
    version: member.version,
    started_at: member.startedAt,
    self: member.self,
  };
}

/**
 * `sys/ha-status` and `sys/leader`: which nodes share the storage and which
 * one leads. Every node serves every request; the leader also runs the
 * scheduled jobs (rotation, CRL rebuilds, tidy, deletion).
 */
export async function registerClusterRoutes(app: FastifyInstance, keyward: Keyward): Promise<void> {
  const cluster = keyward.cluster;

  app.get("/v1/sys/ha-status", {
    schema: {
      tags: ["sys"],
      summary:
        "List the nodes sharing this node's storage: their addresses, last heartbeat, seal state and which one leads.",
    },
    handler: async (request) => {
      const members = await cluster.members();
      const data = { nodes: members.map(nodeView) };
      return { ...data, ...envelope(data, { requestId: request.id }) };
    },
  });

  app.get("/v1/sys/leader", {
    config: { public: true },
    schema: {
      tags: ["sys"],
      summary: "Report whether several nodes share the storage and which one leads.",
    },
    handler: async () => {
      const members = cluster.haEnabled ? await cluster.members() : [];
      const leader = cluster.isLeader
        ? undefined
        : members.find((member) => !member.self && member.leader && member.up);
      const self = cluster.isLeader;
      return {
        ha_enabled: cluster.haEnabled,
        is_self: self,
        node_id: cluster.nodeId,
        leader_node_id: self ? cluster.nodeId : (leader?.nodeId ?? ""),
        leader_address: self ? (members[0]?.apiAddress ?? "") : (leader?.apiAddress ?? ""),
        leader_cluster_address: "",
        performance_standby: false,
        performance_standby_last_remote_wal: 0,
      };
    },
  });
}
