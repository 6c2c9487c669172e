export * from './gen/flotilla/v1/agent_pb.js';
export {
  addGrpcService,
  createGrpcClient,
  type GrpcClient,
  type GrpcHandlers,
  grpcServiceDefinition,
} from './grpc.js';
