/**
 * The child process of the store's crash and lock tests. It does one thing
 * to a store, prints a line starting with `READY`, and then waits to be
 * SIGKILLed (it gives up by itself after a minute).
 *
 * Usage: `child.ts <action> <dir> <backend>` where action is one of
 * - `hold-writer`, `hold-reader`: open the store and keep it open;
 * - `crash-before-commit`: rewrite every frame (pattern seed 1000 + id) with
 *   `writeFrames` and stop before the commit;
 * - `crash-in-commit`: the same, then commit, but hang in the fdatasync of
 *   `manifest.tmp` (written, never renamed);
 * - `crash-after-commit`: the same, and let the commit finish.
 *
 * @module
 */

import process from "node:process";
import { FileStore } from "../../src/store/file.ts";
import { FaultBackend } from "../helpers/faults.ts";
import {
  type BackendName,
  CHILD_SEED_BASE,
  fillPattern,
  makeBackend,
} from "./support.ts";

const GIVE_UP_MS = 60_000;

async function main(): Promise<void> {
  const [action, dir, backendName] = process.argv.slice(2);
  const backend = new FaultBackend(
    await makeBackend(backendName as BackendName),
  );
  setTimeout(() => process.exit(3), GIVE_UP_MS);
  if (action === "hold-writer" || action === "hold-reader") {
    await FileStore.open(dir, {
      backend,
      readOnly: action === "hold-reader",
    });
    console.log(`READY ${process.pid}`);
    return;
  }
  const store = await FileStore.open(dir, { backend });
  const frames = store.readFrames(store.frameIds());
  for (const frame of frames) fillPattern(frame, CHILD_SEED_BASE + frame.id);
  const locations = await store.writeFrames(frames);
  const report = JSON.stringify([...locations]);
  switch (action) {
    case "crash-before-commit":
      console.log(`READY ${report}`);
      return;
    case "crash-in-commit":
      backend.inject({
        op: "fdatasync",
        path: /manifest\.tmp$/,
        action: "hang",
        onFire: () => console.log(`READY ${report}`),
      });
      await store.commit({ locations, walSeq: 99 });
      throw new Error("the commit should have hung");
    case "crash-after-commit":
      await store.commit({ locations, walSeq: 99 });
      console.log(`READY ${report}`);
      return;
    default:
      throw new Error(`unknown action ${action}`);
  }
}

await main();
