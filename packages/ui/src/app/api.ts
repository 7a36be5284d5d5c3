/**
 * The console's calls to the agent (same origin; the session cookie rides
 * along). A 401 means the link's token is stale: the page says so and
 * stops asking; a failed connection means the agent is down: the page says
 * so and tries again.
 */
export class SessionError extends Error {}
export class AgentDown extends Error {}

export interface ApiError {
  code: string;
  message: string;
  details?: string[];
}

export class ApiRefused extends Error {
  constructor(readonly error: ApiError) {
    super(error.message);
  }
}

async function call<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
  let res: Response;
  try {
    res = await fetch(`/api${path}`, {
      method,
      credentials: 'same-origin',
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  } catch (e) {
    throw new AgentDown(e instanceof Error ? e.message : String(e));
  }
  const text = await res.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    throw new AgentDown(`the agent answered ${res.status} without JSON`);
  }
  if (res.status === 401) throw new SessionError((json as { error?: ApiError })?.error?.message ?? 'the session token is stale');
  if (!res.ok) {
    const err = (json as { error?: ApiError })?.error;
    if (err) throw new ApiRefused(err);
    throw new AgentDown(`the agent answered ${res.status}`);
  }
  return json as T;
}

export const api = {
  get: <T>(path: string) => call<T>('GET', path),
  post: <T>(path: string, body: unknown) => call<T>('POST', path, body),
};
