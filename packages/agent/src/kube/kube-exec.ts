/**
 * `kubectl exec` over WebSocket: the pods/exec subresource as kubelet's
 * streaming server answers it, for KubeServer's `upgrade` event.
 *
 * kubectl 1.32 asks for the subprotocol v5.channel.k8s.io (v4 is accepted as
 * the older fallback). Every message is binary, its first byte a channel:
 * 0 stdin, 1 stdout, 2 stderr, 3 the final metav1.Status (JSON), 4 terminal
 * resizes ({"Width","Height"}), and in v5 only 255 CLOSE ([255, id]: the
 * client closed stream id — stdin EOF). When the command has exited and its
 * output has been sent, the session sends its Status on channel 3, then a
 * close frame with code 1000 (kubectl reads a missing close frame as an
 * abnormal closure). Pings are answered by ws (autoPong).
 *
 * Statuses follow kubelet (pkg/kubelet/cri/streaming/remotecommand) with
 * containerd's wording: exit 0 is Success; exit N is NonZeroExitCode with
 * an ExitCode cause "N" (kubectl exits N; death by signal S is 128 + S, as
 * runc reports it); a command that cannot be started is an InternalError,
 * which kubectl prints as "error: Internal error occurred: ..." and exits 1.
 *
 * Without a tty the command gets pipes; with one (`-t`) it runs on the slave
 * of a fresh pty (the datapath addon's ptyOpen: Node has none) as its
 * controlling terminal via util-linux `setsid --ctty`, and stderr is merged
 * into stdout as on a terminal. Either way the command leads its own process
 * group, and the session owns that group: whatever is left of it when the
 * session ends (the client went away, or the command exited and left
 * children behind) is SIGKILLed, so an exec never leaves processes behind.
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { accessSync, closeSync, constants as fsConstants, statSync, write as fsWrite } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { constants as osConstants } from 'node:os';
import { delimiter, join } from 'node:path';
import type { Duplex, Readable } from 'node:stream';
import { ReadStream as TtyReadStream } from 'node:tty';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { native } from '@membrane/datapath';

/** The subprotocols served, preferred first (kubectl 1.32 offers only v5). */
export const EXEC_PROTOCOLS = ['v5.channel.k8s.io', 'v4.channel.k8s.io'] as const;

/** Channel numbers of k8s.io/apimachinery/pkg/util/remotecommand. */
export const CHANNEL = { stdin: 0, stdout: 1, stderr: 2, status: 3, resize: 4, close: 255 } as const;

export interface ExecLaunch {
  file: string;
  args: string[];
  /** Default: the agent's environment. */
  env?: NodeJS.ProcessEnv;
}

export interface ExecOptions {
  command: string[];
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  tty: boolean;
  /** How to run the command (e.g. inside the pod's network namespace). */
  launch: (command: string[]) => ExecLaunch;
  /** Unexpected failures (the client's outcome is already decided when this is called). */
  onError?: (e: Error) => void;
}

export interface ExecQuery {
  command: string[];
  container?: string;
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  tty: boolean;
}

/** metav1.Status as kubelet writes it on channel 3 (Go's field order, omitempty fields left out). */
export interface ExecStatus {
  metadata: Record<string, never>;
  status: 'Success' | 'Failure';
  message?: string;
  reason?: string;
  details?: { causes: { reason?: string; message: string }[] };
  code?: number;
}

/**
 * The exec options of a pods/exec URL, as the apiserver converts them:
 * repeated `command`, `container`, and the flags stdin/stdout/stderr/tty
 * (present and not "0"/"f"/"false" is true). Under a tty stderr is dropped,
 * as kubelet does (the terminal merges it into stdout).
 */
export function execQuery(url: URL): ExecQuery | { error: string } {
  const q = url.searchParams;
  const flag = (name: string): boolean => {
    const v = q.get(name);
    return v !== null && !['0', 'f', 'false'].includes(v.toLowerCase());
  };
  const command = q.getAll('command');
  const tty = flag('tty');
  const stdin = flag('stdin');
  const stdout = flag('stdout');
  const stderr = flag('stderr') && !tty;
  if (command.length === 0) return { error: 'you must specify at least 1 command' };
  if (!stdin && !stdout && !stderr) return { error: 'you must specify at least 1 of stdin, stdout, stderr' };
  const container = q.get('container');
  return { command, ...(container ? { container } : {}), stdin, stdout, stderr, tty };
}

export const SUCCESS: ExecStatus = Object.freeze({ metadata: {}, status: 'Success' });

/** kubelet's status for an exit code other than 0 (containerd's message inside). */
export function nonZeroExitStatus(command: readonly string[], code: number): ExecStatus {
  return {
    metadata: {},
    status: 'Failure',
    // Go's %v of a []string: [sh -c exit 7]
    message: `command terminated with non-zero exit code: error executing command [${command.join(' ')}], exit code ${code}`,
    reason: 'NonZeroExitCode',
    details: { causes: [{ reason: 'ExitCode', message: String(code) }] },
  };
}

/** apierrors.NewInternalError, as kubelet sends it when the command did not run. */
export function internalErrorStatus(message: string): ExecStatus {
  return { metadata: {}, status: 'Failure', message: `Internal error occurred: ${message}`, reason: 'InternalError', details: { causes: [{ message }] }, code: 500 };
}

/** The protocol to speak: v5 when offered, else v4, else none. */
export function chooseProtocol(header: string | undefined): (typeof EXEC_PROTOCOLS)[number] | undefined {
  const offered = new Set((header ?? '').split(',').map((p) => p.trim()).filter(Boolean));
  return EXEC_PROTOCOLS.find((p) => offered.has(p));
}

// One server for every session: noServer (the caller owns the HTTPS server
// and hands over each upgrade), no client tracking (sessions track
// themselves), no compression (kubectl negotiates none).
const wss = new WebSocketServer({
  noServer: true,
  clientTracking: false,
  perMessageDeflate: false,
  autoPong: true,
  // kubectl writes stdin in chunks of at most 32 KiB.
  maxPayload: 4 * 1024 * 1024,
  handleProtocols: (offered) => EXEC_PROTOCOLS.find((p) => offered.has(p)) ?? false,
});

/**
 * Takes over an upgrade request for pods/exec: answers 101 with the chosen
 * subprotocol and runs the command, or refuses with a 400 Status (not a
 * WebSocket upgrade, or none of our subprotocols offered: kubectl then retries
 * with SPDY, which is not served). Never throws; the socket is the session's.
 */
export function handleExecUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, opts: ExecOptions): void {
  if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket') {
    return refuse(socket, `exec is served over WebSocket only (subprotocol ${EXEC_PROTOCOLS.join(' or ')}); ${req.headers.upgrade ?? 'no'} upgrade is not`);
  }
  const protocol = chooseProtocol(req.headers['sec-websocket-protocol']);
  if (!protocol) {
    // ws would upgrade without a subprotocol: refuse before it does.
    return refuse(socket, `requested protocol(s) are not supported: [${req.headers['sec-websocket-protocol'] ?? ''}]; supports [${EXEC_PROTOCOLS.join(' ')}]`);
  }
  wss.handleUpgrade(req, socket, head, (ws) => new ExecSession(ws, protocol === 'v5.channel.k8s.io', opts).start());
}

// Upgraded sockets leave the HTTP server's connection tracking, so stopping
// the server does not end them: the sessions are tracked here instead.
const sessions = new Set<ExecSession>();

/**
 * Ends every running exec session (for the server's stop): its process group
 * is killed and its client gets an InternalError status. Returns how many.
 */
export function endExecSessions(reason = 'the agent is stopping'): number {
  const all = [...sessions];
  for (const s of all) s.abort(reason);
  return all.length;
}

function refuse(socket: Duplex, message: string): void {
  const body = JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason: 'BadRequest', code: 400 });
  socket.on('error', () => socket.destroy());
  socket.once('finish', () => socket.destroy());
  socket.end(
    `HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

/** Why `file` cannot be executed, in runc's words, or undefined when it can (as far as a look-up tells). */
export function notExecutable(file: string, env: NodeJS.ProcessEnv): string | undefined {
  const runnable = (p: string): boolean => {
    try {
      accessSync(p, fsConstants.X_OK);
      return statSync(p).isFile();
    } catch {
      return false;
    }
  };
  if (file.includes('/')) {
    try {
      statSync(file);
    } catch {
      return `exec: "${file}": stat ${file}: no such file or directory`;
    }
    return runnable(file) ? undefined : `exec: "${file}": permission denied`;
  }
  const path = env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
  return path.split(delimiter).some((dir) => runnable(join(dir || '.', file))) ? undefined : `exec: "${file}": executable file not found in $PATH`;
}

// Output is paused while this much is queued on the WebSocket (a slow
// client must not make the agent buffer without bound), resumed below LOW.
const HIGH_WATER = 1024 * 1024;
const LOW_WATER = 256 * 1024;
// After the command exits, its children may still hold the output open
// (`sh -c 'sleep 100 &'`): they get GRACE_MS to finish, then the group is
// killed, and FORCE_MS later the output is closed whoever holds it.
const GRACE_MS = 1000;
const FORCE_MS = 1000;

/** Writes to a nonblocking pty master in order, retrying on EAGAIN (a pty holds a few KiB). */
class PtyWriter {
  private queue: Buffer[] = [];
  private queuedBytes = 0;
  private busy = false;
  /** No more writes: closing, or the master failed (EIO: the command is gone). */
  private stopped = false;
  private closing = false;
  private closeWhenIdle?: () => void;

  constructor(
    private readonly fd: number,
    private readonly onBacklog: (large: boolean) => void,
  ) {}

  write(b: Buffer): void {
    if (this.stopped || b.length === 0) return;
    this.queue.push(b);
    this.queuedBytes += b.length;
    if (this.queuedBytes > HIGH_WATER) this.onBacklog(true);
    this.pump();
  }

  /** Runs done (once) when no write is in flight: the fd may then be closed, no write can hit a reused number. */
  close(done: () => void): void {
    if (this.closing) return;
    this.closing = this.stopped = true;
    this.queue = [];
    if (this.busy) this.closeWhenIdle = done;
    else done();
  }

  private pump(): void {
    if (this.busy || this.stopped || this.queue.length === 0) return;
    this.busy = true;
    const b = this.queue[0]!;
    fsWrite(this.fd, b, 0, b.length, null, (err, n) => {
      this.busy = false;
      if (this.closeWhenIdle) return this.closeWhenIdle();
      if (this.stopped) return;
      if (err?.code === 'EAGAIN') {
        setTimeout(() => this.pump(), 10);
        return;
      }
      if (err) {
        // The command is gone; its input no longer matters.
        this.stopped = true;
        this.queue = [];
        this.queuedBytes = 0;
        this.onBacklog(false);
        return;
      }
      this.queuedBytes -= n;
      if (n < b.length) this.queue[0] = b.subarray(n);
      else this.queue.shift();
      if (this.queuedBytes < LOW_WATER) this.onBacklog(false);
      this.pump();
    });
  }
}

class ExecSession {
  private child?: ChildProcess;
  private pgid?: number;
  private outputs: Readable[] = [];
  private openOutputs = 0;
  private exit?: { code: number | null; signal: NodeJS.Signals | null };
  private pty?: { master: number; stream: TtyReadStream; writer: PtyWriter };
  private ended = false;
  private queued = 0;
  private outputPaused = false;
  private stdinPaused = false;
  private timers: NodeJS.Timeout[] = [];

  constructor(
    private readonly ws: WebSocket,
    private readonly v5: boolean,
    private readonly o: ExecOptions,
  ) {}

  start(): void {
    sessions.add(this);
    this.ws.on('message', (data) => this.onMessage(toBuffer(data)));
    this.ws.on('error', (e) => this.report(e));
    // Before end() this is the client going away; afterwards, the close handshake completing.
    this.ws.on('close', () => this.end());
    let target: ExecLaunch;
    try {
      target = this.o.launch(this.o.command);
    } catch (e) {
      this.report(e);
      return this.end(internalErrorStatus(`error executing command in container: ${errorMessage(e)}`));
    }
    const env = target.env ?? process.env;
    // Checked first because under a tty the spawned file is setsid, which
    // would only report the missing command on the terminal.
    const why = notExecutable(target.file, env);
    if (why) return this.end(internalErrorStatus(`error executing command in container: failed to exec in container: ${why}`));
    try {
      if (this.o.tty) this.spawnTty(target, env);
      else this.spawnPipes(target, env);
    } catch (e) {
      this.report(e);
      return this.end(internalErrorStatus(`error executing command in container: ${errorMessage(e)}`));
    }
  }

  private spawnPipes(target: ExecLaunch, env: NodeJS.ProcessEnv): void {
    const stdio: StdioOptions = [this.o.stdin ? 'pipe' : 'ignore', this.o.stdout ? 'pipe' : 'ignore', this.o.stderr ? 'pipe' : 'ignore'];
    // detached: the child calls setsid(), so it leads a process group whose id is its pid.
    const child = spawn(target.file, target.args, { env, stdio, detached: true });
    this.watch(child);
    child.stdin?.on('error', () => {}); // EPIPE: the command stopped reading; its exit decides.
    if (child.stdout) this.addOutput(child.stdout, CHANNEL.stdout);
    if (child.stderr) this.addOutput(child.stderr, CHANNEL.stderr);
  }

  private spawnTty(target: ExecLaunch, env: NodeJS.ProcessEnv): void {
    const pair = native().ptyOpen(80, 24); // kubectl sends the real size at once
    let child: ChildProcess;
    try {
      // Not detached: setsid(1) must not be a group leader, else it forks
      // and its parent exits at once. It makes the command a session (and
      // group) leader with the pty (fd 0) as controlling terminal, then execs
      // it under the same pid. TERM=xterm as containerd sets for a tty.
      child = spawn('setsid', ['--ctty', '--', target.file, ...target.args], {
        env: { ...env, TERM: 'xterm' },
        stdio: [pair.slave, pair.slave, pair.slave],
      });
    } catch (e) {
      closeSync(pair.master);
      throw e;
    } finally {
      // The child has its copies: the master reads EIO once they are all closed.
      closeSync(pair.slave);
    }
    const stream = new TtyReadStream(pair.master); // owns the fd from here: destroying it closes the master
    const writer = new PtyWriter(pair.master, (large) => this.pauseStdin(large));
    this.pty = { master: pair.master, stream, writer };
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EIO') this.report(e); // EIO: every slave fd is closed, the output is over
    });
    this.watch(child);
    this.addOutput(stream, CHANNEL.stdout);
  }

  private watch(child: ChildProcess): void {
    this.child = child;
    this.pgid = child.pid;
    child.on('error', (e: NodeJS.ErrnoException) => {
      if (child.pid !== undefined) return this.report(e); // a kill that failed; the exit still comes
      // Not started: the look-up passed but exec did not (ETXTBSY, or setsid itself missing).
      this.end(internalErrorStatus(`error executing command in container: failed to exec in container: ${e.message}`));
    });
    child.on('exit', (code, signal) => {
      this.exit = { code, signal };
      if (this.openOutputs === 0) return this.end(this.exitStatus());
      this.timers.push(
        setTimeout(() => {
          this.killGroup();
          this.timers.push(setTimeout(() => this.closeOutputs(), FORCE_MS));
        }, GRACE_MS),
      );
    });
  }

  private addOutput(stream: Readable, channel: number): void {
    this.outputs.push(stream);
    this.openOutputs++;
    stream.on('data', (chunk: Buffer) => this.send(channel, chunk));
    stream.once('close', () => {
      this.openOutputs--;
      if (this.openOutputs === 0 && this.exit) this.end(this.exitStatus());
    });
  }

  private exitStatus(): ExecStatus {
    const { code, signal } = this.exit ?? { code: null, signal: null };
    const rc = code ?? (signal ? 128 + (osConstants.signals[signal] ?? 0) : 1);
    return rc === 0 ? SUCCESS : nonZeroExitStatus(this.o.command, rc);
  }

  private onMessage(data: Buffer): void {
    if (data.length === 0 || this.ended) return;
    const payload = data.subarray(1);
    switch (data[0]) {
      case CHANNEL.stdin:
        return this.stdin(payload);
      case CHANNEL.resize:
        return this.resize(payload);
      case CHANNEL.close:
        // v4 has no CLOSE signal: 255 is an unknown channel there, ignored as kubelet does.
        if (this.v5 && payload[0] === CHANNEL.stdin) this.child?.stdin?.end();
        // Under a tty there is no half-close: the terminal's own EOF (^D) arrives as input.
        return;
      default:
        return; // unknown channels are dropped, as wsstream does
    }
  }

  private stdin(b: Buffer): void {
    if (!this.o.stdin || b.length === 0) return;
    if (this.pty) return this.pty.writer.write(b);
    const w = this.child?.stdin;
    if (!w || w.destroyed || w.writableEnded) return;
    if (!w.write(b)) {
      this.pauseStdin(true);
      w.once('drain', () => this.pauseStdin(false));
    }
  }

  /** Stops reading the client while the command's input is backed up (TCP pushes back to kubectl). */
  private pauseStdin(pause: boolean): void {
    if (pause === this.stdinPaused || this.ended) return;
    this.stdinPaused = pause;
    if (pause) this.ws.pause();
    else this.ws.resume();
  }

  private resize(b: Buffer): void {
    if (!this.pty) return;
    let size: { Width?: unknown; Height?: unknown };
    try {
      size = JSON.parse(b.toString('utf8')) as typeof size;
    } catch {
      return; // kubelet logs and ignores a malformed resize
    }
    const { Width, Height } = size;
    if (!isDimension(Width) || !isDimension(Height)) return;
    try {
      native().ptyResize(this.pty.master, Width, Height);
    } catch (e) {
      this.report(e);
    }
  }

  private send(channel: number, data: Buffer): void {
    if (this.ws.readyState !== WebSocket.OPEN) return;
    const frame = Buffer.allocUnsafe(data.length + 1);
    frame[0] = channel;
    data.copy(frame, 1);
    this.queued += frame.length;
    this.ws.send(frame, { binary: true }, () => {
      this.queued -= frame.length;
      if (this.outputPaused && this.queued < LOW_WATER) this.pauseOutput(false);
    });
    if (!this.outputPaused && this.queued > HIGH_WATER) this.pauseOutput(true);
  }

  private pauseOutput(pause: boolean): void {
    this.outputPaused = pause;
    for (const s of this.outputs) {
      if (pause) s.pause();
      else s.resume();
    }
  }

  private killGroup(): void {
    if (this.pgid === undefined) return;
    try {
      process.kill(-this.pgid, 'SIGKILL');
    } catch (e) {
      // ESRCH: the group is empty. (Its id could only be reused once it is
      // empty and a new process made itself group leader under that pid.)
      if ((e as NodeJS.ErrnoException).code !== 'ESRCH') this.report(e);
    }
  }

  /** Ends the session from outside (endExecSessions), telling the client why. */
  abort(reason: string): void {
    this.end(internalErrorStatus(`error executing command in container: ${reason}`));
  }

  /**
   * Ends the session once: with a status when the command's outcome is
   * known, without one when the client went away. Invariant: after this,
   * nothing of the session runs — the group is killed, timers are cleared,
   * pipes and the pty master are closed.
   */
  private end(status?: ExecStatus): void {
    if (this.ended) return;
    this.ended = true;
    sessions.delete(this);
    for (const t of this.timers) clearTimeout(t);
    this.killGroup();
    if (status && this.ws.readyState === WebSocket.OPEN) {
      this.send(CHANNEL.status, Buffer.from(JSON.stringify(status)));
      this.ws.close(1000);
    } else if (this.ws.readyState === WebSocket.OPEN) {
      this.ws.terminate();
    }
    if (this.stdinPaused) this.ws.resume();
    this.child?.stdin?.destroy();
    this.closeOutputs();
  }

  /** Closes the pipes, and the pty master once no write to it is in flight (idempotent). */
  private closeOutputs(): void {
    for (const s of this.outputs) if (s !== this.pty?.stream) s.destroy();
    const pty = this.pty;
    if (pty) pty.writer.close(() => pty.stream.destroy());
  }

  private report(e: unknown): void {
    this.o.onError?.(e instanceof Error ? e : new Error(String(e)));
  }
}

function isDimension(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v > 0 && v <= 0xffff;
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
