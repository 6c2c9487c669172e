/**
 * A Kubernetes object (or part of one) as the server handles it: JSON whose shape depends on the
 * kind. Typing it would need the whole API schema; the server reads fields defensively instead.
 */
// biome-ignore lint/suspicious/noExplicitAny: objects of every kind pass through, read defensively
export type Json = any;
