export * from './apply-request.js';
