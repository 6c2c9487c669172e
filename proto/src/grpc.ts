import { type DescMessage, fromBinary, type MessageShape, toBinary } from '@bufbuild/protobuf';
import type { GenService, GenServiceMethods } from '@bufbuild/protobuf/codegenv2';
import * as grpc from '@grpc/grpc-js';

type In<M extends GenServiceMethods[string]> = MessageShape<M['input']>;
type Out<M extends GenServiceMethods[string]> = MessageShape<M['output']>;

/** The grpc-js handler type for each method of a generated service, by method kind. */
export type GrpcHandlers<S extends GenServiceMethods> = {
  [K in keyof S]: S[K]['methodKind'] extends 'unary'
    ? grpc.handleUnaryCall<In<S[K]>, Out<S[K]>>
    : S[K]['methodKind'] extends 'server_streaming'
      ? grpc.handleServerStreamingCall<In<S[K]>, Out<S[K]>>
      : S[K]['methodKind'] extends 'client_streaming'
        ? grpc.handleClientStreamingCall<In<S[K]>, Out<S[K]>>
        : grpc.handleBidiStreamingCall<In<S[K]>, Out<S[K]>>;
};

/** The grpc-js client method type for each method of a generated service, by method kind. */
export type GrpcClient<S extends GenServiceMethods> = grpc.Client & {
  [K in keyof S]: S[K]['methodKind'] extends 'unary'
    ? (
        request: In<S[K]>,
        metadata: grpc.Metadata,
        options: Partial<grpc.CallOptions>,
        callback: grpc.requestCallback<Out<S[K]>>,
      ) => grpc.ClientUnaryCall
    : S[K]['methodKind'] extends 'server_streaming'
      ? (
          request: In<S[K]>,
          metadata?: grpc.Metadata,
          options?: Partial<grpc.CallOptions>,
        ) => grpc.ClientReadableStream<Out<S[K]>>
      : S[K]['methodKind'] extends 'client_streaming'
        ? (
            metadata: grpc.Metadata,
            options: Partial<grpc.CallOptions>,
            callback: grpc.requestCallback<Out<S[K]>>,
          ) => grpc.ClientWritableStream<In<S[K]>>
        : (
            metadata?: grpc.Metadata,
            options?: Partial<grpc.CallOptions>,
          ) => grpc.ClientDuplexStream<In<S[K]>, Out<S[K]>>;
};

function codec(schema: DescMessage) {
  return {
    serialize: (message: MessageShape<DescMessage>) => Buffer.from(toBinary(schema, message)),
    deserialize: (bytes: Buffer) => fromBinary(schema, bytes),
  };
}

/**
 * Derives the grpc-js service definition from a protobuf-es service descriptor, so no
 * method needs hand-written glue: paths, streaming flags and (de)serialisers all come
 * from the descriptor.
 */
export function grpcServiceDefinition<S extends GenServiceMethods>(
  service: GenService<S>,
): grpc.ServiceDefinition<grpc.UntypedServiceImplementation> {
  const definition: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const method of service.methods) {
    const input = codec(method.input);
    const output = codec(method.output);
    definition[method.localName] = {
      path: `/${service.typeName}/${method.name}`,
      requestStream: method.methodKind === 'client_streaming' || method.methodKind === 'bidi_streaming',
      responseStream: method.methodKind === 'server_streaming' || method.methodKind === 'bidi_streaming',
      requestSerialize: input.serialize as (value: unknown) => Buffer,
      requestDeserialize: input.deserialize,
      responseSerialize: output.serialize as (value: unknown) => Buffer,
      responseDeserialize: output.deserialize,
      originalName: method.name,
    };
  }
  return definition;
}

/** Adds a typed implementation of a generated service to a grpc-js server. */
export function addGrpcService<S extends GenServiceMethods>(
  server: grpc.Server,
  service: GenService<S>,
  handlers: GrpcHandlers<S>,
): void {
  server.addService(grpcServiceDefinition(service), handlers as unknown as grpc.UntypedServiceImplementation);
}

/** Creates a typed grpc-js client of a generated service. */
export function createGrpcClient<S extends GenServiceMethods>(
  service: GenService<S>,
  address: string,
  credentials: grpc.ChannelCredentials,
  options?: grpc.ClientOptions,
): GrpcClient<S> {
  const Ctor = grpc.makeGenericClientConstructor(grpcServiceDefinition(service), service.name);
  return new Ctor(address, credentials, options) as unknown as GrpcClient<S>;
}
