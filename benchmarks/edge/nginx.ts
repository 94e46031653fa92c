/**
 * nginx `proxy_cache` as the baseline: Debian's nginx with its own config and prefix in a
 * temp dir (never the system one), one worker, pinned like the server under test, stopped
 * by the PID in its own pid file.
 */
import { execFileSync, spawn } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'

export interface NginxInit {
  /** Port to listen on (127.0.0.1). */
  port: number
  /** The origin, `127.0.0.1:PORT`. */
  origin: string
  /** CPU list for `taskset -c`. */
  cpu: string
  /** Cache what passes (the default), or only pass it on: the relay benchmark's plain `proxy_pass`. */
  cache?: boolean
}

export interface Nginx {
  readonly port: number
  /** The config used, the temp prefix shown as `<prefix>`. */
  readonly config: string
  /** Master and worker PIDs (the worker does the serving; the master and cache helpers idle). */
  pids(): number[]
  stop(): Promise<void>
}

/**
 * The proxy_cache config, tuned for hit throughput with one worker and `sendfile off`:
 * - `open_file_cache` keeps cache files open (a hit then skips open/fstat/close);
 * - `output_buffers 2 256k`: with sendfile off nginx reads a cached body into these and
 *   writes it; the best of the sizes tried at 64 KiB and 1 MiB (`./README.md`);
 * - an upstream keepalive pool, HTTP/1.1 to the origin, unlimited keepalive requests to
 *   clients, no access log, a short cache key.
 */
export function nginxConfig(prefix: string, init: NginxInit, user: string): string {
  const cache = init.cache ?? true
  return `worker_processes 1;
${user}
daemon off;
master_process on;
pid ${prefix}/nginx.pid;
error_log ${prefix}/logs/error.log warn;
events {
  worker_connections 4096;
  multi_accept on;
}
http {
  access_log off;
  server_tokens off;
  sendfile off;
  tcp_nodelay on;
  keepalive_timeout 65;
  keepalive_requests 100000000;
  output_buffers 2 256k;
  open_file_cache max=1024 inactive=1h;
  open_file_cache_valid 1h;
  open_file_cache_min_uses 1;
  default_type application/octet-stream;
  client_body_temp_path ${prefix}/tmp/client_body;
  proxy_temp_path ${prefix}/tmp/proxy;
  fastcgi_temp_path ${prefix}/tmp/fastcgi;
  uwsgi_temp_path ${prefix}/tmp/uwsgi;
  scgi_temp_path ${prefix}/tmp/scgi;
${cache ? `  proxy_cache_path ${prefix}/cache levels=1:2 keys_zone=edge:64m max_size=16g inactive=1h use_temp_path=off;\n` : ''}  upstream origin {
    server ${init.origin};
    keepalive 64;
  }
  server {
    listen 127.0.0.1:${init.port} backlog=4096;
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
${cache ? '      proxy_cache edge;\n      proxy_cache_key $uri;\n      proxy_cache_valid 200 1h;\n      proxy_cache_lock on;\n' : ''}      proxy_buffers 16 64k;
      proxy_buffer_size 16k;
    }
${cache ? MIN_USES_2_LOCATION : ''}  }
}
`
}

/** The cached location, storing an object only at its second request (the miss runs' reference). */
const MIN_USES_2_LOCATION = `    # The same, storing an object only at its second request (for the miss runs' reference)
    location /min2/ {
      proxy_pass http://origin/;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_cache edge;
      proxy_cache_key $uri;
      proxy_cache_valid 200 1h;
      proxy_cache_min_uses 2;
      proxy_cache_lock on;
      proxy_buffers 16 64k;
      proxy_buffer_size 16k;
    }
`

/** Starts nginx under `taskset -c cpu` and waits until it accepts connections. */
export async function startNginx(init: NginxInit): Promise<Nginx> {
  const prefix = mkdtempSync(join(tmpdir(), 'shoal-bench-edge-nginx-'))
  for (const dir of ['logs', 'cache', 'tmp']) mkdirSync(join(prefix, dir), { recursive: true })
  // as root the master would drop its worker to `nobody`, which cannot write the temp prefix
  const user = process.getuid?.() === 0 ? 'user root root;' : ''
  const config = nginxConfig(prefix, init, user)
  const file = join(prefix, 'nginx.conf')
  writeFileSync(file, config)
  execFileSync('nginx', ['-t', '-q', '-c', file, '-p', prefix], { stdio: 'inherit' })
  // daemon off: taskset execs nginx, so the child is the master (the pid file says so too)
  const child = spawn('taskset', ['-c', init.cpu, 'nginx', '-c', file, '-p', prefix], {
    stdio: ['ignore', 'ignore', 'inherit'],
  })
  const pidFile = join(prefix, 'nginx.pid')
  const masterPid = (): number | undefined =>
    existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8').trim()) : undefined
  let stopped = false
  const nginx: Nginx = {
    port: init.port,
    config: config.replaceAll(prefix, '<prefix>'),
    pids() {
      const master = masterPid()
      if (master === undefined) return []
      const children = readFileSync(`/proc/${master}/task/${master}/children`, 'utf8').trim()
      return [master, ...(children === '' ? [] : children.split(/\s+/).map(Number))]
    },
    async stop() {
      if (stopped) return
      stopped = true
      try {
        const pid = masterPid()
        if (pid !== undefined && child.exitCode === null) {
          process.kill(pid, 'SIGQUIT')
          for (let i = 0; i < 100 && child.exitCode === null; i++) await sleep(50)
          if (child.exitCode === null) process.kill(pid, 'SIGKILL')
        }
      } finally {
        rmSync(prefix, { recursive: true, force: true })
      }
    },
  }
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) {
      rmSync(prefix, { recursive: true, force: true })
      throw new Error(`nginx exited with ${child.exitCode}`)
    }
    const up = await fetch(`http://127.0.0.1:${init.port}/__count`, { signal: AbortSignal.timeout(1000) })
      .then(async (res) => {
        await res.arrayBuffer()
        return masterPid() !== undefined
      })
      .catch(() => false)
    if (up) return nginx
    if (i >= 100) {
      await nginx.stop()
      throw new Error('nginx did not start within 10 s')
    }
    await sleep(100)
  }
}
