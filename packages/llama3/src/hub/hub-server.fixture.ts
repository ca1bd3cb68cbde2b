/**
 * Test-only: a miniature Hugging Face hub on 127.0.0.1 that serves in-memory repos at the URLs
 * `@huggingface/hub` and `resolveModel` call, with the headers the real hub sends, so downloads can be tested
 * without network. It logs every request and can misbehave on purpose (cut a body short, lie about a size).
 *
 *     GET  /api/models/:owner/:name/revision/:rev      repo info with `sha` (modelInfo)
 *     GET  /api/models/:owner/:name/tree/:rev[/:path]  file list, paged with a `Link: rel="next"` header (listFiles)
 *     GET|HEAD /:owner/:name/resolve/:rev/:path        small files with `ETag`; LFS files redirect (302) to
 *     GET|HEAD /cdn/:sha256                            the bytes, like the hub's CDN; both honour `Range`
 * @module
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A repo the server holds. */
export interface FixtureRepo {
  /** `owner/name`. */
  repo: string;
  /** Its one commit (40 hex digits); `main` resolves to it. */
  commit: string;
  /** Path to contents. */
  files: Record<string, Uint8Array | string>;
  /** When set, `resolve` answers 401 without `Authorization: Bearer <token>` and 403 with another token,
   * as for Meta's gated repos (whose file lists are public). */
  token?: string;
  /** Sizes the file list reports instead of the true ones (to test the size check). */
  reportedSizes?: Record<string, number>;
}

/** One request the server received. */
export interface LoggedRequest {
  /** `GET` or `HEAD`. */
  method: string;
  /** Path and query. */
  url: string;
  /** The `Range` header, if any. */
  range?: string;
  /** The `Authorization` header, if any. */
  authorization?: string;
}

/** A running fixture hub. */
export interface HubServer {
  /** `http://127.0.0.1:<port>`. */
  url: string;
  /** Every request so far, in order. */
  requests: LoggedRequest[];
  /** Cuts the connection after `bytes` bytes of the next data response for `path` (any repo). */
  cutNext(path: string, bytes: number): void;
  /** Files per page of the file list (small values test paging). */
  pageSize: number;
  /** Stops the server and drops open connections. */
  close(): Promise<void>;
}

interface StoredFile {
  path: string;
  data: Uint8Array;
  gitOid: string;
  sha256?: string; // set for files stored in LFS (weights)
}

const hash = (algorithm: string, data: Uint8Array | string) =>
  createHash(algorithm).update(data).digest('hex');

/** Git's blob id of `data`: sha1 over `blob <size>\0` and the bytes. */
function gitOid(data: Uint8Array): string {
  return createHash('sha1').update(`blob ${data.byteLength}\0`).update(data).digest('hex');
}

function storeFile(path: string, contents: Uint8Array | string): StoredFile {
  const data = typeof contents === 'string' ? new TextEncoder().encode(contents) : contents;
  // The hub keeps weights in LFS: the file list gives `lfs.oid` (sha256), which is the blob name too.
  if (/\.(safetensors|pth|bin|model)$/.test(path)) {
    const sha256 = hash('sha256', data);
    const pointer = `version https://git-lfs.github.com/spec/v1\noid sha256:${sha256}\nsize ${data.byteLength}\n`;
    return { path, data, gitOid: gitOid(new TextEncoder().encode(pointer)), sha256 };
  }
  return { path, data, gitOid: gitOid(data) };
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

/** Starts the fixture hub on a free port of 127.0.0.1. */
export async function startHubServer(repos: FixtureRepo[]): Promise<HubServer> {
  const byName = new Map(
    repos.map((r) => [r.repo, { ...r, stored: Object.entries(r.files).map(([p, c]) => storeFile(p, c)) }]),
  );
  const blobs = new Map<string, Uint8Array>();
  for (const repo of byName.values()) for (const f of repo.stored) if (f.sha256) blobs.set(f.sha256, f.data);
  const cuts = new Map<string, number>();
  const requests: LoggedRequest[] = [];

  /** Sends `data` (or the asked range of it), cutting it short if a cut is pending for `path`. */
  const sendBytes = (
    req: IncomingMessage,
    res: ServerResponse,
    path: string,
    data: Uint8Array,
    headers: object,
  ) => {
    let start = 0;
    let status = 200;
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (range) {
      start = Number(range[1]);
      if (start >= data.byteLength) {
        res.writeHead(416, { 'Content-Range': `bytes */${data.byteLength}` });
        res.end();
        return;
      }
      status = 206;
    }
    const body = data.subarray(start);
    res.writeHead(status, {
      ...headers,
      'Accept-Ranges': 'bytes',
      'Content-Length': String(body.byteLength),
      ...(status === 206 && { 'Content-Range': `bytes ${start}-${data.byteLength - 1}/${data.byteLength}` }),
    });
    if (req.method === 'HEAD') return void res.end();
    const cut = cuts.get(path);
    if (cut === undefined) return void res.end(body);
    cuts.delete(path);
    // Headers promised the whole body: the client gets `cut` bytes, then the connection closes mid-file.
    // The pause lets it read them first (fetch drops chunks still queued when the body errors).
    res.write(body.subarray(0, cut), () => setTimeout(() => res.socket?.end(), 200));
  };

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    requests.push({
      method: req.method ?? '',
      url: req.url ?? '',
      ...(req.headers.range && { range: req.headers.range }),
      ...(req.headers.authorization && { authorization: req.headers.authorization }),
    });
    const cdn = /^\/cdn\/([0-9a-f]{64})$/.exec(url.pathname);
    if (cdn) {
      const data = blobs.get(cdn[1]!);
      return data ? sendBytes(req, res, cdn[1]!, data, {}) : sendJson(res, 404, { error: 'no such blob' });
    }
    const api = /^\/api\/models\/([^/]+\/[^/]+)\/(revision|tree)\/([^/]+)(?:\/(.*))?$/.exec(url.pathname);
    const resolve = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    const [name, rev] = api ? [api[1]!, api[3]!] : resolve ? [resolve[1]!, resolve[2]!] : ['', ''];
    const repo = byName.get(name);
    if (!repo) {
      // The hub answers 401 for unknown repos, so as not to tell private ones apart.
      return sendJson(res, 401, { error: 'Repository Not Found' }, { 'X-Error-Code': 'RepoNotFound' });
    }
    if (decodeURIComponent(rev) !== 'main' && decodeURIComponent(rev) !== repo.commit) {
      return sendJson(res, 404, { error: 'Invalid rev id' }, { 'X-Error-Code': 'RevisionNotFound' });
    }
    if (api?.[2] === 'revision') {
      return sendJson(res, 200, {
        _id: '0'.repeat(24),
        id: repo.repo,
        sha: repo.commit,
        private: false,
        gated: repo.token ? 'manual' : false,
        downloads: 0,
        likes: 0,
        lastModified: '2024-01-01T00:00:00.000Z',
      });
    }
    if (api) {
      const prefix = api[4] ? `${api[4]}/` : '';
      const entries = repo.stored
        .filter((f) => f.path.startsWith(prefix))
        .map((f) => {
          const size = repo.reportedSizes?.[f.path] ?? f.data.byteLength;
          const lfs = f.sha256 && { lfs: { oid: f.sha256, size, pointerSize: 130 } };
          return { type: 'file', oid: f.gitOid, size, path: f.path, ...lfs };
        });
      const from = Number(url.searchParams.get('cursor') ?? 0);
      const page = entries.slice(from, from + server.pageSize);
      const next = from + server.pageSize;
      const link = new URL(req.url ?? '', server.url);
      link.searchParams.set('cursor', String(next));
      return sendJson(res, 200, page, next < entries.length ? { Link: `<${link.href}>; rel="next"` } : {});
    }
    if (repo.token !== undefined && req.headers.authorization !== `Bearer ${repo.token}`) {
      const status = req.headers.authorization ? 403 : 401;
      const error = `Access to model ${repo.repo} is restricted. You must have access to it and be authenticated.`;
      return sendJson(res, status, { error }, { 'X-Error-Code': 'GatedRepo' });
    }
    const path = decodeURIComponent(resolve![3]!);
    const file = repo.stored.find((f) => f.path === path);
    if (!file) return sendJson(res, 404, { error: 'Entry not found' }, { 'X-Error-Code': 'EntryNotFound' });
    const common = { 'X-Repo-Commit': repo.commit };
    if (file.sha256) {
      res.writeHead(302, {
        ...common,
        Location: `/cdn/${file.sha256}`,
        'X-Linked-Etag': `"${file.sha256}"`,
        'X-Linked-Size': String(file.data.byteLength),
      });
      return void res.end();
    }
    sendBytes(req, res, path, file.data, { ...common, ETag: `"${file.gitOid}"` });
  };

  const http = createServer(handle);
  await new Promise<void>((ready) => http.listen(0, '127.0.0.1', ready));
  const { port } = http.address() as AddressInfo;
  const server: HubServer = {
    url: `http://127.0.0.1:${port}`,
    requests,
    pageSize: 1000,
    cutNext: (path, bytes) => {
      const file = [...byName.values()].flatMap((r) => r.stored).find((f) => f.path === path);
      // LFS bytes are served from the CDN URL, keyed by sha256.
      cuts.set(file?.sha256 ?? path, bytes);
    },
    close: () =>
      new Promise<void>((done) => {
        http.closeAllConnections();
        http.close(() => done());
      }),
  };
  return server;
}
