import type { FastifyInstance, FastifyRequest } from "fastify";
import { KeywardError } from "../../../errors.ts";
import {
  accountAuthorizations,
  accountOrders,
  accountSummary,
  authorizationSummary,
  orderDetails,
  orderSummary,
} from "../acme/management.ts";
import type { AccountRecord } from "../acme/records.ts";
import type { AcmeService } from "../acme/service.ts";
import { listQuery, requireList, sendData, TAGS } from "./shared.ts";

const idParams = {
  type: "object",
  required: ["id"],
  properties: { id: { type: "string", minLength: 1, maxLength: 64, description: "Record id." } },
} as const;

/** Builds a Vault-style list response: the ids in `keys` and each record under `key_info`. */
function listData<T extends { id: string }>(records: T[]) {
  return {
    keys: records.map((record) => record.id),
    key_info: Object.fromEntries(records.map((record) => [record.id, record])),
  };
}

/**
 * Registers read-only, token-authenticated routes over the ACME records:
 * accounts, each account's orders and authorizations, and single orders
 * (with their authorizations and certificate serial) and authorizations.
 */
export function registerAcmeManagementRoutes(
  app: FastifyInstance,
  acmeFor: (request: FastifyRequest) => AcmeService,
) {
  const requireAccount = async (request: FastifyRequest, id: string): Promise<AccountRecord> => {
    const account = await acmeFor(request).store.account(id);
    if (!account) throw new KeywardError("not_found", `ACME account "${id}" not found`);
    return account;
  };

  app.get("/acme/mgmt/accounts", {
    schema: { tags: TAGS, summary: "List ACME account ids.", querystring: listQuery },
    handler: async (request, reply) => {
      requireList(request);
      return sendData(request, reply, { keys: await acmeFor(request).store.listAccounts() });
    },
  });

  app.get<{ Params: { id: string } }>("/acme/mgmt/accounts/:id", {
    schema: {
      tags: TAGS,
      summary: "Read an ACME account with its orders and their authorizations.",
      params: idParams,
    },
    handler: async (request, reply) => {
      const store = acmeFor(request).store;
      const account = await requireAccount(request, request.params.id);
      const orders = [];
      for (const order of await accountOrders(store, account.id)) {
        orders.push(await orderDetails(store, order));
      }
      return sendData(request, reply, { ...accountSummary(account), orders });
    },
  });

  app.get<{ Params: { id: string } }>("/acme/mgmt/accounts/:id/orders", {
    schema: {
      tags: TAGS,
      summary: "List an ACME account's orders (GET with list=true).",
      params: idParams,
      querystring: listQuery,
    },
    handler: async (request, reply) => {
      requireList(request);
      const account = await requireAccount(request, request.params.id);
      const orders = await accountOrders(acmeFor(request).store, account.id);
      return sendData(request, reply, listData(orders.map(orderSummary)));
    },
  });

  app.get<{ Params: { id: string } }>("/acme/mgmt/accounts/:id/authorizations", {
    schema: {
      tags: TAGS,
      summary: "List an ACME account's authorizations (GET with list=true).",
      params: idParams,
      querystring: listQuery,
    },
    handler: async (request, reply) => {
      requireList(request);
      const account = await requireAccount(request, request.params.id);
      const authorizations = await accountAuthorizations(acmeFor(request).store, account.id);
      return sendData(request, reply, listData(authorizations.map(authorizationSummary)));
    },
  });

  app.get<{ Params: { id: string } }>("/acme/mgmt/orders/:id", {
    schema: {
      tags: TAGS,
      summary: "Read an ACME order with its authorizations and certificate serial.",
      params: idParams,
    },
    handler: async (request, reply) => {
      const store = acmeFor(request).store;
      const order = await store.order(request.params.id);
      if (!order)
        throw new KeywardError("not_found", `ACME order "${request.params.id}" not found`);
      return sendData(request, reply, await orderDetails(store, order));
    },
  });

  app.get<{ Params: { id: string } }>("/acme/mgmt/authorizations/:id", {
    schema: {
      tags: TAGS,
      summary: "Read an ACME authorization with its challenges.",
      params: idParams,
    },
    handler: async (request, reply) => {
      const authorization = await acmeFor(request).store.authorization(request.params.id);
      if (!authorization) {
        throw new KeywardError("not_found", `ACME authorization "${request.params.id}" not found`);
      }
      return sendData(request, reply, authorizationSummary(authorization));
    },
  });
}
