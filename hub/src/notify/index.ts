export { parseReceivers } from './config.js';
export {
  createNotifier,
  type Delivery,
  NOTIFY_KINDS,
  type Notifier,
  type NotifyEvent,
  type NotifyKind,
  type Receiver,
} from './notifier.js';
export { fleetEvents } from './watch.js';
