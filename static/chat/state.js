// What the chat page's modules share about the open conversation and the user's sends in flight.

export const state = {
  // Public id of the open conversation; null on a new chat until the first send creates it.
  conversation: null,
  // client_id -> {text, attachments}: sends not yet acknowledged by a `message` frame.
  pending: new Map(),
  // Our message was stored; its reply placeholder has not arrived yet.
  awaitingReply: false,
};
