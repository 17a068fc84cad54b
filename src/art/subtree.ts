/**
 * Walks over the nodes of one frame: the bodies of a subtree in preorder,
 * their child references and child bodies. Traversals never cross a Blob
 * edge and use an explicit stack, so a 64 KiB key's path cannot overflow
 * the call stack.
 *
 * @module
 */

import type { Frame } from "../frame/frame.ts";
import { innerChildRefs } from "../frame/inner.ts";
import {
  INNER_END,
  PREFIX_CHILD,
  T_BLOB,
  T_EMPTY_ROOT,
  T_LEAF,
  T_PREFIX,
} from "../frame/layout.ts";

/** Appends the byte offsets of the in-frame child references of the node at
 * `off` to `out`: the end leaf first, then the children in byte order. */
export function childRefs(frame: Frame, off: number, out: number[]): void {
  const nodeType = frame.type(off);
  if (nodeType === T_LEAF || nodeType === T_BLOB || nodeType === T_EMPTY_ROOT) {
    return;
  }
  if (nodeType === T_PREFIX) {
    out.push(off + PREFIX_CHILD);
    return;
  }
  if (frame.target(off + INNER_END) !== 0) out.push(off + INNER_END);
  innerChildRefs(frame, nodeType, off, out);
}

/** Appends the body offsets of the in-frame children of the node at `off`
 * to `out`, in the order of {@linkcode childRefs}. */
export function childOffsets(frame: Frame, off: number, out: number[]): void {
  const first = out.length;
  childRefs(frame, off, out);
  for (let i = first; i < out.length; i++) out[i] = frame.target(out[i]);
}

/** The body offsets of the subtree rooted at `rootOff`, in preorder. */
export function subtreeOffsets(frame: Frame, rootOff: number): number[] {
  const order: number[] = [];
  const stack = [rootOff];
  const children: number[] = [];
  const u8 = frame.u8;
  while (stack.length > 0) {
    const off = stack.pop()!;
    order.push(off);
    // Most bodies are leaves: no children to look for.
    if (u8[off] === T_LEAF) continue;
    children.length = 0;
    childOffsets(frame, off, children);
    for (let i = children.length - 1; i >= 0; i--) stack.push(children[i]);
  }
  return order;
}

/** Rewrites every in-frame child reference of the node at `off` through
 * `map` (old offset / 8 -> new offset / 8). */
export function remapChildren(
  frame: Frame,
  off: number,
  map: Uint16Array,
): void {
  if (frame.u8[off] === T_LEAF) return;
  remapRefs.length = 0;
  childRefs(frame, off, remapRefs);
  const u16 = frame.u16;
  for (const ref of remapRefs) u16[ref >>> 1] = map[u16[ref >>> 1]];
}

/** The references {@linkcode remapChildren} rewrites; reused. */
const remapRefs: number[] = [];

/**
 * The byte offset of the reference that names the body at `off`: searched
 * among `rootRefs` (the references where the frame's subtrees start) and
 * the child references of every node below them. Throws when none does.
 */
export function findReference(
  frame: Frame,
  rootRefs: readonly number[],
  off: number,
): number {
  const stack: number[] = [];
  for (const ref of rootRefs) {
    if (frame.target(ref) === off) return ref;
    stack.push(frame.target(ref));
  }
  const refs: number[] = [];
  while (stack.length > 0) {
    refs.length = 0;
    childRefs(frame, stack.pop()!, refs);
    for (const ref of refs) {
      const child = frame.target(ref);
      if (child === off) return ref;
      stack.push(child);
    }
  }
  throw new Error(
    `holt invariant violated: no reference names byte ${off} of frame ${frame.id}`,
  );
}
