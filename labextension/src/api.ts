/** Calls to the nb2pipe server extension; every failure becomes an Error with its message. */

import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import type {
  Analysis,
  ErrorReply,
  ExportResult,
  Grammar,
  RunStarted,
  RunStatus
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

/** The analysis of the saved notebook file. */
export function analyzeFile(path: string): Promise<Analysis> {
  return request<Analysis>(`analyze?path=${encodeURIComponent(path)}`);
}

/** The analysis of the notebook as the editor holds it (unsaved changes included). */
export function analyzeContent(
  path: string,
  content: object
): Promise<Analysis> {
  return post<Analysis>('analyze', { path, content });
}

export function exportPipeline(
  path: string,
  output: string
): Promise<ExportResult> {
  return post<ExportResult>('export', { path, output });
}

export function startRun(path: string): Promise<RunStarted> {
  return post<RunStarted>('runs', { path });
}

export function runStatus(id: string): Promise<RunStatus> {
  return request<RunStatus>(`runs/${id}`);
}
