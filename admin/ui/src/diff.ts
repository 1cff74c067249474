/**
 * A small line diff (longest common subsequence) for config versions:
 * enough for files people edit by hand. Files over MAX_CELLS line pairs fall
 * back to "replace everything" rather than stall the page.
 */
export interface DiffLine {
  op: "same" | "add" | "del";
  text: string;
  /** Line numbers in the old / new text (1-based; 0 = absent on that side). */
  a: number;
  b: number;
}

const MAX_CELLS = 4_000_000;

export function lineDiff(oldText: string, newText: string): DiffLine[] {
  const a = oldText === "" ? [] : oldText.split("\n");
  const b = newText === "" ? [] : newText.split("\n");
  const n = a.length;
  const m = b.length;
  if (n * m > MAX_CELLS) {
    return [
      ...a.map((text, i) => ({ op: "del" as const, text, a: i + 1, b: 0 })),
      ...b.map((text, j) => ({ op: "add" as const, text, a: 0, b: j + 1 })),
    ];
  }
  // lcs[i][j] = LCS length of a[i:] and b[j:], in one flat array.
  const w = m + 1;
  const lcs = new Uint32Array((n + 1) * w);
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i * w + j] = a[i] === b[j] ? lcs[(i + 1) * w + j + 1]! + 1 : Math.max(lcs[(i + 1) * w + j]!, lcs[i * w + j + 1]!);
    }
  }
  const out: DiffLine[] = [];
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    if (a[i] === b[j]) {
      out.push({ op: "same", text: a[i]!, a: i + 1, b: j + 1 });
      i++;
      j++;
    } else if (lcs[(i + 1) * w + j]! >= lcs[i * w + j + 1]!) {
      out.push({ op: "del", text: a[i]!, a: i + 1, b: 0 });
      i++;
    } else {
      out.push({ op: "add", text: b[j]!, a: 0, b: j + 1 });
      j++;
    }
  }
  for (; i < n; i++) out.push({ op: "del", text: a[i]!, a: i + 1, b: 0 });
  for (; j < m; j++) out.push({ op: "add", text: b[j]!, a: 0, b: j + 1 });
  return out;
}
