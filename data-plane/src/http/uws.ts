/**
 * The one place that loads uWebSockets.js. We require the native binary directly: the package's
 * own entry (src/uws.js) silently falls back to a slow pure-JS server when the binary does not
 * load, and a gateway that quietly runs 10x slower is worse than one that refuses to start.
 */
import { accessSync, constants } from 'node:fs';
import { createRequire } from 'node:module';
import type { TemplatedApp, us_listen_socket, us_socket } from 'uWebSockets.js';

export type Uws = typeof import('uWebSockets.js');
export type { HttpRequest, HttpResponse, TemplatedApp } from 'uWebSockets.js';

let loaded: Uws | undefined;

/** Load (once) and return the native module; throws a clear error instead of falling back. */
export function loadUws(): Uws {
  if (loaded) return loaded;
  const binary = `uWebSockets.js/binaries/uws_${process.platform}_${process.arch}_${process.versions.modules}.node`;
  try {
    loaded = createRequire(import.meta.url)(binary) as Uws;
  } catch (cause) {
    throw new Error(
      `Cannot load the uWebSockets.js native binary ${binary} (Node ${process.version}, ABI ${process.versions.modules}, ` +
        `${process.platform}-${process.arch}). Fluxgate never uses uWS's slow JS fallback: run a Node version this uWS build ships a binary for.`,
      { cause },
    );
  }
  // Do not advertise the server implementation ("uWebSockets: 20" on every response).
  loaded._cfg('silent');
  return loaded;
}

export interface TlsFiles {
  certPath: string;
  keyPath: string;
  passphrase?: string;
  /** OpenSSL-style list for TLS 1.2; TLS 1.3 suites are fixed by BoringSSL. */
  ciphers?: string;
}

/**
 * Mozilla "intermediate" TLS 1.2 suites: ECDHE + AEAD only (no CBC, no static RSA).
 * TLS 1.0/1.1 need no option: uSockets calls SSL_CTX_set_min_proto_version(TLS1_2_VERSION)
 * (src/crypto/openssl.c); verified here with `openssl s_client -tls1_1` → alert 70 protocol_version.
 */
export const TLS12_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

/** An HTTPS app (TLS 1.2+). uWS only says "App construction failed", so check the files first. */
export function createTlsApp(uws: Uws, files: TlsFiles): TemplatedApp {
  for (const [what, path] of [
    ['certificate', files.certPath],
    ['private key', files.keyPath],
  ] as const) {
    try {
      accessSync(path, constants.R_OK);
    } catch (cause) {
      throw new Error(`TLS ${what} file is not readable: ${path}`, { cause });
    }
  }
  try {
    return uws.SSLApp({
      cert_file_name: files.certPath,
      key_file_name: files.keyPath,
      ...(files.passphrase !== undefined ? { passphrase: files.passphrase } : {}),
      ssl_ciphers: files.ciphers ?? TLS12_CIPHERS,
    });
  } catch (cause) {
    throw new Error(
      `uWS could not build a TLS context from ${files.certPath} and ${files.keyPath} (bad PEM, key mismatch or wrong passphrase?)`,
      { cause },
    );
  }
}

export function createPlainApp(uws: Uws): TemplatedApp {
  return uws.App();
}

export interface Listening {
  readonly port: number;
  /** Stop accepting connections (idempotent); open connections are left to finish. */
  close(): void;
}

export interface ListenOptions {
  /**
   * uSockets binds with SO_REUSEPORT unless told otherwise, so several processes can share one
   * port and the kernel spreads new connections over them (DATA_PLANE_WORKERS). A listener that
   * must be one process's alone (each worker's admin port) binds exclusively instead, so a port
   * already taken fails loudly rather than splitting its connections with whoever holds it.
   */
  exclusive?: boolean;
}

/** Listen on host:port (0 = any free port) and report the bound port. */
export function listen(app: TemplatedApp, host: string, port: number, opts: ListenOptions = {}): Promise<Listening> {
  const uws = loadUws();
  // LIBUS_LISTEN_EXCLUSIVE_PORT is 1 and the default 0 (the binary exports the number; the enum
  // docs/index.d.ts declares does not exist at run time). The binary takes (host, port, options,
  // cb), an overload the typings omit.
  const flags = opts.exclusive ? 1 : 0;
  const listenWith = app.listen.bind(app) as unknown as (
    host: string,
    port: number,
    options: number,
    cb: (socket: us_listen_socket | false) => void,
  ) => TemplatedApp;
  return new Promise((resolve, reject) => {
    // uWS calls back synchronously with the listen socket, or false when binding failed.
    listenWith(host, port, flags, (socket) => {
      if (!socket) {
        reject(new Error(`Cannot listen on ${host}:${port} (address in use or not available)`));
        return;
      }
      let open = true;
      resolve({
        // us_socket_local_port accepts a listen socket too (docs/index.d.ts).
        port: uws.us_socket_local_port(socket as unknown as us_socket),
        close() {
          if (!open) return;
          open = false;
          uws.us_listen_socket_close(socket);
        },
      });
    });
  });
}

/** Name used by main.ts. */
export const listenOn = listen;

/**
 * Close every listen socket and every open connection of `app` at once (uWS.js App#close,
 * present in this build but missing from its typings). For tests and the end of a drain.
 */
export function closeAll(app: TemplatedApp): void {
  (app as TemplatedApp & { close?: () => void }).close?.();
}
