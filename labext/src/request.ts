// Copyright (c) cs3sync contributors. Apache-2.0.
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/** The URL namespace of the cs3sync server extension. */
export const API_NAMESPACE = 'api/cs3sync';

/** What kind of failure a request met, derived from the HTTP status. */
export type ErrorKind =
  | 'bad-request'
  | 'unauthorized'
  | 'forbidden'
  | 'not-found'
  | 'conflict'
  | 'locked'
  | 'offline'
  | 'quota'
  | 'network'
  | 'server';

/**
 * A failed call to the cs3sync REST API: carries the HTTP status, the server's
 * short message and a kind that the panels can switch on.
 */
export class CS3APIError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly kind: ErrorKind,
    readonly body: any = null
  ) {
    super(message);
    this.name = 'CS3APIError';
  }
}

/** Map an HTTP status to an error kind. */
export function errorKind(status: number): ErrorKind {
  switch (status) {
    case 0:
      return 'network';
    case 400:
    case 422:
      return 'bad-request';
    case 401:
      return 'unauthorized';
    case 403:
      return 'forbidden';
    case 404:
      return 'not-found';
    case 409:
    case 412:
      return 'conflict';
    case 423:
      return 'locked';
    case 503:
    case 504:
      return 'offline';
    case 507:
      return 'quota';
    default:
      return 'server';
  }
}

/**
 * Call the cs3sync REST API.
 *
 * @param endPoint path under `api/cs3sync/`, with its query string
 * @param serverSettings the application's server settings (base URL, token, XSRF)
 * @param init fetch options; a plain object `body` is sent as JSON
 * @returns the parsed JSON body, or `null` for an empty answer (204)
 */
export async function requestAPI<T>(
  endPoint: string,
  serverSettings: ServerConnection.ISettings,
  init: Omit<RequestInit, 'body'> & { body?: any } = {}
): Promise<T> {
  const url = URLExt.join(serverSettings.baseUrl, API_NAMESPACE, endPoint);
  const request: RequestInit = { ...init };
  if (init.body !== undefined && typeof init.body !== 'string') {
    request.body = JSON.stringify(init.body);
    request.headers = {
      'Content-Type': 'application/json',
      ...(init.headers as Record<string, string> | undefined)
    };
  }
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, request, serverSettings);
  } catch (error) {
    throw new CS3APIError(
      (error as Error)?.message || 'network error',
      0,
      'network'
    );
  }
  const text = await response.text();
  let data: any = null;
  if (text.length > 0) {
    try {
      data = JSON.parse(text);
    } catch {
      data = text;
    }
  }
  if (!response.ok) {
    const message =
      (data && typeof data === 'object' && (data.message || data.reason)) ||
      response.statusText ||
      `HTTP ${response.status}`;
    throw new CS3APIError(
      String(message),
      response.status,
      errorKind(response.status),
      data
    );
  }
  return data as T;
}
