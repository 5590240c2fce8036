/** Object keys of a receipt inside the incoming bucket. */
export function receiptKeys(receiptId: string): { tarKey: string; indexKey: string } {
  return { tarKey: `${receiptId}.tar`, indexKey: `${receiptId}.index.jsonl` };
}
