import { createConnection, createServer, type Server, type Socket } from 'node:net';

/** A TCP proxy a test can partition (cut every connection, refuse new ones) or freeze, and heal. */
export interface TcpProxy {
  /** `127.0.0.1:PORT` to connect to instead of the target. */
  address: string;
  port: number;
  /** Bytes sent from the target to clients since start. */
  bytesDown(): number;
  /** Once `bytes` more have flowed from the target to clients, partition (see down()). */
  partitionAfter(bytes: number): Promise<void>;
  /** Cuts every open connection and refuses new ones until up(). */
  down(): void;
  /**
   * A link that dies without a word: every open connection stays open but no byte crosses it
   * either way (nor its end), and new connections are accepted and never answered, until up(),
   * which cuts them all.
   */
  freeze(): void;
  up(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  const pairs = new Map<Socket, Socket>();
  let isDown = false;
  let frozen = false;
  let down = 0;
  let trigger: { at: number; fire: () => void } | undefined;

  const cut = () => {
    isDown = true;
    frozen = false;
    for (const s of sockets) s.destroy();
    sockets.clear();
    pairs.clear();
  };

  const server: Server = createServer((client) => {
    if (isDown) {
      client.destroy();
      return;
    }
    if (frozen) {
      // Held, never answered; cut by up().
      client.pause();
      sockets.add(client);
      client.on('error', () => client.destroy());
      return;
    }
    const upstream = createConnection(target);
    sockets.add(client);
    sockets.add(upstream);
    pairs.set(client, upstream);
    const close = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
      pairs.delete(client);
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
    client.pipe(upstream);
    upstream.on('data', (chunk: Buffer) => {
      down += chunk.length;
      if (trigger && down >= trigger.at) {
        const { fire } = trigger;
        trigger = undefined;
        cut();
        fire();
        return;
      }
      client.write(chunk);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    address: `127.0.0.1:${port}`,
    port,
    bytesDown: () => down,
    partitionAfter(bytes) {
      return new Promise((fire) => {
        trigger = { at: down + bytes, fire };
      });
    },
    down: cut,
    freeze() {
      frozen = true;
      // Paused sockets read nothing, so neither data nor an end is seen on either side.
      for (const [client, upstream] of pairs) {
        client.unpipe(upstream);
        client.pause();
        upstream.pause();
      }
    },
    up() {
      if (frozen) cut();
      isDown = false;
    },
    async close() {
      cut();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
