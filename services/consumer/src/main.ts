// Placeholder until the service lands (see its issue).
export {};
