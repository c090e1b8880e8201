/** A message as the search index stores it. */
export interface MessageDocument {
  applicationId: number
  chatId: number
  chatNumber: number
  number: number
  body: string
  version: number
  createdAt: Date
  updatedAt: Date
}

/** The document id: the message's natural key, so that re-indexing overwrites, never duplicates. */
export const documentId = (chatId: number, number: number) => `${chatId}:${number}`

export const toSource = (document: MessageDocument) => ({
  application_id: document.applicationId,
  chat_id: document.chatId,
  number: document.number,
  body: document.body,
  created_at: document.createdAt.toISOString(),
  updated_at: document.updatedAt.toISOString(),
  version: document.version,
})
