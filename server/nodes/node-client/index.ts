// The node client's public surface: other domains import from here only.
export { NodeClient, type NodeClientOptions } from './client';
export { NodeCallError } from './call-error';
export type { NodeTarget, CallOptions } from './worker-calls';
export type { ChatCallOptions, ChatOutcome, InProcessNode, OllamaChatRequest, OllamaMessage, OllamaToolCall } from './inference';
export type { EmbedOutcome, OllamaEmbedRequest } from './models';
