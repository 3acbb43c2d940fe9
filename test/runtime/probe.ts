/**
 * Exercises the detected {@link Runtime} for real: spawn, kill, temp files and serve.
 * Run with node (tsx), bun or deno; prints one JSON line `{ runtime, ok, failures, checks }`
 * and exits 0 when every check passed. runtimes.test.ts runs it under all three.
 */

import { realpath, stat } from "node:fs/promises";
import { detectRuntime } from "../../src/runtime/detect.ts";
import type { Runtime, Subprocess } from "../../src/runtime/types.ts";

/** A quiet gap past Bun's default idle timeout (10 s on a coarse 4 s timer: cuts seen at 9-12.5 s). */
const QUIET_GAP_MS = 15_000;
const SSE_INTERVAL_MS = 100;
const SSE_DURATION_MS = 15_000;
const CANCEL_WINDOW_MS = 2_000;

const encoder = new TextEncoder();
const checks: Record<string, unknown> = {};
const failures: string[] = [];

function expect(name: string, condition: boolean, detail?: unknown): void {
  if (!condition) failures.push(detail === undefined ? name : `${name}: ${JSON.stringify(detail)}`);
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function withTimeout<T>(promise: Promise<T>, ms: number, label: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${label} timed out after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function childEnv(rt: Runtime, extra: Record<string, string> = {}): Record<string, string> {
  const path = rt.env().PATH ?? rt.env().Path ?? "";
  return { PATH: path, ...extra };
}

async function runEcho(rt: Runtime, cwd: string): Promise<void> {
  const script = [
    'let s = ""; process.stdin.setEncoding("utf8");',
    "process.stdin.on('data', (d) => { s += d; });",
    "process.stdin.on('end', () => {",
    "  process.stdout.write(s.toUpperCase());",
    '  const home = process.env.HOME ?? "-";',
    '  process.stderr.write("env=" + process.env.PROBE_VAR + ";home=" + home + ";cwd=" + process.cwd());',
    "  process.exitCode = 3;",
    "});",
  ].join("\n");
  const input = `hello runtime\n${"x".repeat(300_000)}`;
  const child = rt.spawn("node", ["-e", script], {
    cwd,
    env: childEnv(rt, { PROBE_VAR: "probe-value" }),
  });
  const writing = (async () => {
    const writer = child.stdin.getWriter();
    await writer.write(encoder.encode(input));
    await writer.close();
  })();
  const [stdout, stderr, status] = await Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
    child.exited,
    writing,
  ]);
  checks.echo = {
    pid: child.pid,
    stdoutLength: stdout.length,
    stdoutHead: stdout.slice(0, 14),
    stderr,
    status,
  };
  expect("echo pid", typeof child.pid === "number" && child.pid > 0, child.pid);
  expect("echo stdout", stdout === input.toUpperCase(), stdout.slice(0, 40));
  expect("echo stderr", stderr === `env=probe-value;home=-;cwd=${await realpath(cwd)}`, stderr);
  expect("echo status", status.exitCode === 3 && status.signal === null, status);
}

function runMissing(rt: Runtime): void {
  const codes: Record<string, unknown> = {};
  for (const command of ["definitely-not-a-program-xyz", "/definitely/not/here/xyz"]) {
    try {
      const child = rt.spawn(command, [], { env: childEnv(rt) });
      codes[command] = `spawned pid ${child.pid}`;
    } catch (error) {
      codes[command] = error instanceof Error && "code" in error ? error.code : String(error);
    }
  }
  checks.missing = codes;
  for (const [command, code] of Object.entries(codes)) {
    expect(`missing ${command}`, code === "ENOENT", code);
  }
}

async function firstChunk(stream: ReadableStream<Uint8Array>): Promise<string> {
  const reader = stream.getReader();
  const { value } = await reader.read();
  reader.releaseLock();
  return new TextDecoder().decode(value);
}

async function runKill(rt: Runtime): Promise<void> {
  const child: Subprocess = rt.spawn(
    "node",
    ["-e", 'process.stdout.write("ready\\n"); setInterval(() => {}, 1000)'],
    { env: childEnv(rt) },
  );
  const ready = await withTimeout(firstChunk(child.stdout), 10_000, "kill child start");
  const started = Date.now();
  child.kill("SIGTERM");
  const status = await withTimeout(child.exited, 5_000, "kill exited");
  const killMs = Date.now() - started;
  let killAfterExit = "ok";
  try {
    child.kill("SIGTERM");
    child.kill("SIGKILL");
  } catch (error) {
    killAfterExit = String(error);
  }
  await child.stdout.cancel().catch(() => {});
  await child.stderr.cancel().catch(() => {});
  checks.kill = { ready: ready.trim(), status, killMs, killAfterExit };
  expect("kill status", status.exitCode === null && status.signal === "SIGTERM", status);
  expect("kill after exit", killAfterExit === "ok", killAfterExit);
}

/** Writing to a child that has exited must reject (or be swallowed), never crash the process. */
async function runBrokenPipe(rt: Runtime): Promise<void> {
  const child = rt.spawn("node", ["-e", "process.exit(0)"], { env: childEnv(rt) });
  await child.exited;
  let outcome = "resolved";
  try {
    const writer = child.stdin.getWriter();
    await writer.write(new Uint8Array(1 << 20));
    await writer.close();
  } catch {
    outcome = "rejected";
  }
  await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text()]);
  checks.brokenPipe = outcome;
}

async function runFiles(rt: Runtime): Promise<string> {
  const root = await rt.mkdtemp(rt.tmpdir(), "probe-");
  const nested = `${root}/a/b`;
  await rt.mkdir(nested);
  await rt.mkdir(nested);
  const file = `${nested}/secret.txt`;
  await rt.writeFile(file, "secret");
  const mode = (await stat(file)).mode & 0o777;
  const dirMode = (await stat(nested)).mode & 0o777;
  let secondWrite = "written";
  try {
    await rt.writeFile(file, "again");
  } catch (error) {
    secondWrite = error instanceof Error && "code" in error ? String(error.code) : String(error);
  }
  const log = `${nested}/log.txt`;
  await rt.appendFile(log, "one\n");
  await rt.appendFile(log, "two\n");
  const logMode = (await stat(log)).mode & 0o777;
  await rt.writeFile(`${nested}/bytes.bin`, new Uint8Array([104, 105]));
  const files = {
    root,
    text: await rt.readTextFile(file),
    bytes: await rt.readTextFile(`${nested}/bytes.bin`),
    log: await rt.readTextFile(log),
    missing: await rt.readTextFile(`${nested}/missing.txt`),
    isFile: rt.isFile(file),
    isFileDir: rt.isFile(nested),
    isFileMissing: rt.isFile(`${nested}/missing.txt`),
    mode: mode.toString(8),
    logMode: logMode.toString(8),
    dirMode: dirMode.toString(8),
    secondWrite,
  };
  checks.files = files;
  expect("files text", files.text === "secret" && files.bytes === "hi", files);
  expect("files append", files.log === "one\ntwo\n", files.log);
  expect("files missing", files.missing === null, files.missing);
  expect("files isFile", files.isFile && !files.isFileDir && !files.isFileMissing, files);
  if (rt.platform !== "win32") {
    expect("files mode", files.mode === "600" && files.logMode === "600", files);
    expect("files dir mode", files.dirMode === "700", files.dirMode);
  }
  expect("files exclusive", files.secondWrite === "EEXIST", files.secondWrite);
  return root;
}

async function removeFiles(rt: Runtime, root: string): Promise<void> {
  await rt.remove(root);
  await rt.remove(root);
  const gone =
    !rt.isFile(`${root}/a/b/secret.txt`) &&
    (await rt.readTextFile(`${root}/a/b/secret.txt`)) === null;
  (checks.files as Record<string, unknown>).removed = gone;
  expect("files removed", gone);
}

interface SseState {
  chunksSent: number;
  cancelledAt: number | null;
  abortedAt: number | null;
  timer: ReturnType<typeof setInterval> | undefined;
}

function sseResponse(request: Request, state: SseState): Response {
  request.signal.addEventListener("abort", () => {
    state.abortedAt ??= Date.now();
  });
  const started = Date.now();
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      state.timer = setInterval(() => {
        if (Date.now() - started > SSE_DURATION_MS) {
          clearInterval(state.timer);
          controller.close();
          return;
        }
        state.chunksSent += 1;
        try {
          controller.enqueue(encoder.encode(`data: ${state.chunksSent}\n\n`));
        } catch {
          clearInterval(state.timer);
        }
      }, SSE_INTERVAL_MS);
    },
    cancel() {
      state.cancelledAt ??= Date.now();
      clearInterval(state.timer);
    },
  });
  return new Response(body, { headers: { "content-type": "text/event-stream" } });
}

function quietResponse(): Response {
  const body = new ReadableStream<Uint8Array>({
    async start(controller) {
      controller.enqueue(encoder.encode("data: first\n\n"));
      await sleep(QUIET_GAP_MS);
      controller.enqueue(encoder.encode("data: second\n\n"));
      controller.close();
    },
  });
  return new Response(body, { headers: { "content-type": "text/event-stream" } });
}

/** Records when each watched request's signal aborts, keyed by a client-chosen id. */
const signalAborts = new Map<string, number>();

function watchSignal(request: Request): string {
  const id = new URL(request.url).searchParams.get("id") ?? "";
  request.signal.addEventListener("abort", () => signalAborts.set(id, Date.now()));
  return id;
}

/** A non-streaming handler still working when the client goes away must see request.signal abort. */
async function slowResponse(request: Request): Promise<Response> {
  watchSignal(request);
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 5_000);
    request.signal.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    });
  });
  return new Response("late");
}

async function runSignals(base: string): Promise<void> {
  // A delivered response must not abort the signal (Deno's legacy behaviour does).
  const done = await fetch(`${base}/plain?id=done`);
  const doneText = await done.text();
  const slow = new AbortController();
  const slowStarted = Date.now();
  const pending = fetch(`${base}/slow?id=slow`, { signal: slow.signal }).catch(() => null);
  await sleep(300);
  const slowAbortedAt = Date.now();
  slow.abort();
  await pending;
  while (!signalAborts.has("slow") && Date.now() - slowAbortedAt < CANCEL_WINDOW_MS) {
    await sleep(20);
  }
  await sleep(200);
  const slowAbort = signalAborts.get("slow");
  checks.signals = {
    doneText,
    abortedAfterSuccess: signalAborts.has("done"),
    slowAbortMs: slowAbort === undefined ? null : slowAbort - slowAbortedAt,
    slowStartedMsAgo: Date.now() - slowStarted,
  };
  expect(
    "signal quiet after success",
    doneText === "plain" && !signalAborts.has("done"),
    checks.signals,
  );
  expect("signal aborts on disconnect", slowAbort !== undefined, checks.signals);
}

async function runServe(rt: Runtime): Promise<void> {
  const sse: SseState = { chunksSent: 0, cancelledAt: null, abortedAt: null, timer: undefined };
  const server = await rt.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeoutMs: 0,
    fetch: async (request) => {
      const url = new URL(request.url);
      if (url.pathname === "/sse") return sseResponse(request, sse);
      if (url.pathname === "/quiet") return quietResponse();
      if (url.pathname === "/slow") return slowResponse(request);
      if (url.pathname === "/plain") {
        watchSignal(request);
        return new Response("plain");
      }
      if (url.pathname === "/echo") {
        const body = new Uint8Array(await request.arrayBuffer());
        return new Response(body, { headers: { "x-length": String(body.byteLength) } });
      }
      return new Response("not found", { status: 404 });
    },
  });
  const base = `http://127.0.0.1:${server.port}`;
  expect("serve port", server.port > 0, server.port);

  // Started first and awaited last: it needs QUIET_GAP_MS, the other checks run meanwhile.
  const quietStarted = Date.now();
  const quiet = fetch(`${base}/quiet`).then(async (response) => ({
    status: response.status,
    text: await response.text(),
    ms: Date.now() - quietStarted,
  }));

  const big = new Uint8Array(2 * 1024 * 1024);
  for (let i = 0; i < big.length; i += 1) big[i] = (i * 31 + (i >> 11)) & 0xff;
  const echoResponse = await fetch(`${base}/echo`, { method: "POST", body: big });
  const echoed = new Uint8Array(await echoResponse.arrayBuffer());
  const sameBytes = echoed.length === big.length && echoed.every((byte, i) => byte === big[i]);
  checks.bigBody = {
    status: echoResponse.status,
    length: echoed.length,
    header: echoResponse.headers.get("x-length"),
    sameBytes,
  };
  expect("big body", echoResponse.status === 200 && sameBytes, checks.bigBody);

  await runSignals(base);

  const controller = new AbortController();
  const response = await fetch(`${base}/sse`, { signal: controller.signal });
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  let received = "";
  let chunks = 0;
  while (chunks < 2) {
    const { value, done } = await reader.read();
    if (done) break;
    received += new TextDecoder().decode(value);
    chunks += 1;
  }
  const abortedAt = Date.now();
  controller.abort();
  await reader.cancel().catch(() => {});
  const deadline = abortedAt + CANCEL_WINDOW_MS;
  while (Date.now() < deadline && (sse.cancelledAt === null || sse.abortedAt === null)) {
    await sleep(20);
  }
  const sentAtCheck = sse.chunksSent;
  await sleep(300);
  checks.sse = {
    contentType: response.headers.get("content-type"),
    clientChunks: chunks,
    firstChunk: received.split("\n")[0],
    cancelMs: sse.cancelledAt === null ? null : sse.cancelledAt - abortedAt,
    signalAbortMs: sse.abortedAt === null ? null : sse.abortedAt - abortedAt,
    // Still producing after the window means nothing stopped the stream.
    producingAfterWindow: sse.chunksSent > sentAtCheck,
  };
  clearInterval(sse.timer);
  expect("sse chunks", chunks === 2 && received.startsWith("data: 1"), checks.sse);
  expect(
    "sse cancelled within 2 s",
    sse.cancelledAt !== null || sse.abortedAt !== null,
    checks.sse,
  );

  const quietResult = await withTimeout(quiet, QUIET_GAP_MS + 10_000, "quiet stream");
  checks.quiet = quietResult;
  expect(
    "quiet stream not cut",
    quietResult.text === "data: first\n\ndata: second\n\n",
    quietResult,
  );

  const closeStarted = Date.now();
  await withTimeout(server.close(), 5_000, "server close");
  checks.closeMs = Date.now() - closeStarted;
  let refused = false;
  try {
    await fetch(`${base}/echo`, { method: "POST", body: "x" });
  } catch {
    refused = true;
  }
  checks.refusedAfterClose = refused;
  expect("refused after close", refused);
}

/**
 * lookup resolves localhost; fetchPinned reaches the given address for a name that does not
 * resolve at all, sends that name as Host, returns redirects unfollowed and stops on abort.
 */
async function runPinned(rt: Runtime): Promise<void> {
  const seen: string[] = [];
  const server = await rt.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeoutMs: 0,
    fetch: (request) => {
      const url = new URL(request.url);
      seen.push(`${request.headers.get("host")} ${url.pathname}`);
      if (url.pathname === "/moved") {
        return new Response(null, { status: 302, headers: { location: "/elsewhere" } });
      }
      if (url.pathname === "/hang")
        return new Response(
          // One byte first: Bun's server sends no headers before the first chunk.
          new ReadableStream({ start: (c) => c.enqueue(new Uint8Array([1])), pull() {} }),
        );
      return new Response("pinned", { headers: { "x-check": "1" } });
    },
  });
  try {
    const localhost = await rt.lookup("localhost");
    const name = `pinned.invalid:${server.port}`;
    const signal = new AbortController().signal;
    const ok = await rt.fetchPinned(`http://${name}/ok`, { address: "127.0.0.1", signal });
    const text = await ok.text();
    const moved = await rt.fetchPinned(`http://${name}/moved`, { address: "127.0.0.1", signal });
    const controller = new AbortController();
    const hang = await rt.fetchPinned(`http://${name}/hang`, {
      address: "127.0.0.1",
      signal: controller.signal,
    });
    const reader = (hang.body as ReadableStream<Uint8Array>).getReader();
    await reader.read();
    const reading = reader.read();
    setTimeout(() => controller.abort(), 50);
    const aborted = await withTimeout(
      reading.then(
        () => "resolved",
        () => "rejected",
      ),
      3_000,
      "pinned abort",
    );
    let unresolvable = "resolved";
    try {
      await rt.lookup("no-such-host.invalid");
    } catch {
      unresolvable = "threw";
    }
    checks.pinned = {
      localhostLoopback: localhost.some((a) => a === "127.0.0.1" || a === "::1"),
      status: ok.status,
      text,
      header: ok.headers.get("x-check"),
      moved: [moved.status, moved.headers.get("location")],
      aborted,
      unresolvable,
      seen,
    };
    expect(
      "pinned",
      checks.pinned !== undefined &&
        text === "pinned" &&
        moved.status === 302 &&
        aborted === "rejected" &&
        unresolvable === "threw" &&
        seen[0] === `${name} /ok` &&
        !seen.includes(`${name} /elsewhere`),
      checks.pinned,
    );
  } finally {
    await server.close();
  }
}

async function main(): Promise<void> {
  const rt = await detectRuntime();
  checks.runtime = { name: rt.name, version: rt.version, platform: rt.platform };
  checks.args = rt.args();
  checks.rss = rt.rss();
  const totalMemory = rt.totalMemory();
  checks.totalMemory = totalMemory;
  expect("totalMemory", totalMemory > rt.rss(), totalMemory);
  const env = rt.env();
  checks.envHasPath = typeof (env.PATH ?? env.Path) === "string";
  expect("args", JSON.stringify(checks.args) === JSON.stringify(["--probe", "x y"]), checks.args);
  expect("rss", typeof checks.rss === "number" && checks.rss > 1_000_000, checks.rss);
  expect("env", checks.envHasPath === true);
  expect(
    "env values",
    Object.values(env).every((value) => typeof value === "string"),
  );
  let root = "";
  const steps: [string, () => Promise<void>][] = [
    [
      "files",
      async () => {
        root = await runFiles(rt);
      },
    ],
    ["echo", () => runEcho(rt, root)],
    ["files remove", () => removeFiles(rt, root)],
    ["missing", async () => runMissing(rt)],
    ["kill", () => runKill(rt)],
    ["broken pipe", () => runBrokenPipe(rt)],
    ["serve", () => runServe(rt)],
    ["pinned", () => runPinned(rt)],
  ];
  for (const [name, step] of steps) {
    try {
      await withTimeout(step(), 40_000, name);
    } catch (error) {
      failures.push(`${name} threw: ${error instanceof Error ? error.stack : String(error)}`);
    }
  }
  console.log(JSON.stringify({ runtime: rt.name, ok: failures.length === 0, failures, checks }));
  rt.exit(failures.length === 0 ? 0 : 1);
}

await main();
