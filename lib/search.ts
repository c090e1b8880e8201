// Placeholder until the search issue lands: the consumers hand persisted messages to `index`.

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

export interface MessageIndexer {
  /** Indexes persisted messages. Never throws for an unavailable engine: it retries later itself. */
  index(documents: MessageDocument[]): Promise<void>
}
