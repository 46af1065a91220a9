/** Calls to the nb2pipe server extension; every failure becomes an Error with its message. */

import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import type {
  Analysis,
  ErrorReply,
  ExportDiff,
  ExportResult,
  Grammar,
  RunHistory,
  RunStatus,
  Split,
  SplitTags,
  TagProblems
} from './types';

/** An answer other than 2xx; `body` holds the JSON the server sent, when it sent some. */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly body: unknown
  ) {
    super(message);
  }
}

function isErrorReply(value: unknown): value is ErrorReply {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { message?: unknown }).message === 'string'
  );
}

async function request<T>(
  endpoint: string,
  init: RequestInit = {}
): Promise<T> {
  const settings = ServerConnection.makeSettings();
  const url = URLExt.join(settings.baseUrl, 'nb2pipe', endpoint);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new ServerConnection.NetworkError(error as TypeError);
  }
  const text = await response.text();
  let body: unknown = null;
  if (text) {
    try {
      body = JSON.parse(text);
    } catch {
      body = text;
    }
  }
  if (!response.ok) {
    const message =
      isErrorReply(body) && body.message ? body.message : response.statusText;
    throw new ApiError(
      message || `HTTP ${response.status}`,
      response.status,
      body
    );
  }
  return body as T;
}

function post<T>(endpoint: string, body: object): Promise<T> {
  return request<T>(endpoint, { method: 'POST', body: JSON.stringify(body) });
}

export function fetchGrammar(): Promise<Grammar> {
  return request<Grammar>('grammar');
}

/** What nb2pipe would reject in each tag ({tag: problem}); valid tags are not listed. */
export function checkTags(tags: string[]): Promise<TagProblems> {
  return post<TagProblems>('tags', { tags });
}

/** The analysis of the saved notebook file. */
export function analyzeFile(path: string): Promise<Analysis> {
  return request<Analysis>(`analyze?path=${encodeURIComponent(path)}`);
}

/** Names this page: a newer analysis from it supersedes its older one still running. */
const CLIENT = Math.random().toString(36).slice(2);

/** The analysis of the notebook as the editor holds it (unsaved changes included); the
 * body is the notebook's JSON alone, which the server hands to a worker unparsed. */
export function analyzeContent(
  path: string,
  content: object
): Promise<Analysis> {
  const query = `path=${encodeURIComponent(path)}&client=${CLIENT}`;
  return request<Analysis>(`analyze?${query}`, {
    method: 'POST',
    body: JSON.stringify(content)
  });
}

/** The step tags that make an automatic split explicit; nothing is written. */
export function splitTags(
  path: string,
  split: Split,
  content: object | null
): Promise<SplitTags> {
  return post<SplitTags>('split', { path, split, content });
}

export function exportPipeline(
  path: string,
  output: string,
  force = false
): Promise<ExportResult> {
  return post<ExportResult>('export', { path, output, force });
}

export function exportDiff(path: string, output: string): Promise<ExportDiff> {
  return post<ExportDiff>('export/diff', { path, output });
}

/** Start a run; `parameters` holds the text typed for each parameter changed. */
export function startRun(
  path: string,
  parameters: Record<string, string>
): Promise<RunStatus> {
  return post<RunStatus>('runs', { path, parameters });
}

export function runStatus(id: string): Promise<RunStatus> {
  return request<RunStatus>(`runs/${id}`);
}

export function runHistory(path: string): Promise<RunHistory> {
  return request<RunHistory>(`runs?path=${encodeURIComponent(path)}`);
}

/** Stop a run and everything it started; answers once it is gone. */
export function cancelRun(id: string): Promise<RunStatus> {
  return post<RunStatus>(`runs/${id}/cancel`, {});
}

/** The address of a run's HTML report. */
export function reportUrl(id: string): string {
  const settings = ServerConnection.makeSettings();
  return URLExt.join(settings.baseUrl, 'nb2pipe', 'runs', id, 'report');
}

/** The body of an error answer, when the server sent one. */
export function errorReply(error: unknown): ErrorReply | null {
  return error instanceof ApiError && isErrorReply(error.body)
    ? error.body
    : null;
}
