import assert from 'node:assert/strict';
import { test } from 'node:test';
import { create } from '@bufbuild/protobuf';
import * as grpc from '@grpc/grpc-js';
import {
  AgentService,
  addGrpcService,
  createGrpcClient,
  RegisterResponseSchema,
  type ReportStatusResponse,
  ReportStatusResponseSchema,
} from './index.js';

test('the bridge serves and calls unary and bidi-streaming methods from the descriptor alone', async (t) => {
  const server = new grpc.Server();
  addGrpcService(server, AgentService, {
    register(call, callback) {
      callback(
        null,
        create(RegisterResponseSchema, { cluster: `c-${call.request.token}`, labels: { a: 'b' } }),
      );
    },
    rotateCredential(_call, callback) {
      callback({ code: grpc.status.UNIMPLEMENTED, details: 'not in this test' });
    },
    reportStatus(call) {
      call.on('data', (req) =>
        call.write(create(ReportStatusResponseSchema, { body: { case: 'ack', value: { seq: req.seq } } })),
      );
      call.on('end', () => call.end());
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  t.after(() => server.forceShutdown());
  const client = createGrpcClient(AgentService, `127.0.0.1:${port}`, grpc.credentials.createInsecure());
  t.after(() => client.close());

  const reply = await new Promise<{ cluster: string; labels: Record<string, string> }>((resolve, reject) =>
    client.register(
      {
        $typeName: 'flotilla.v1.RegisterRequest',
        token: 'x',
        agentVersion: '',
        agentPublicKey: new Uint8Array(),
        ageRecipient: '',
      },
      new grpc.Metadata(),
      {},
      (err, res) => (err || !res ? reject(err) : resolve(res)),
    ),
  );
  assert.equal(reply.cluster, 'c-x');
  assert.deepEqual(reply.labels, { a: 'b' });

  const stream = client.reportStatus();
  const acks: bigint[] = [];
  const done = new Promise<void>((resolve) => {
    stream.on('data', (res: ReportStatusResponse) => {
      if (res.body.case === 'ack') acks.push(res.body.value.seq);
    });
    stream.on('end', resolve);
  });
  for (const seq of [1n, 2n, 3n]) {
    stream.write({
      $typeName: 'flotilla.v1.ReportStatusRequest',
      seq,
      body: { case: 'heartbeat', value: { $typeName: 'flotilla.v1.Heartbeat', appliedGeneration: 4n } },
    });
  }
  stream.end();
  await done;
  assert.deepEqual(acks, [1n, 2n, 3n]);
});
