/**
 * The dashboard's two HTML documents: the login form and the shell the client renders into. Neither holds
 * job data (the client fetches it from the API and writes it with textContent) and neither has inline
 * script, which the Content-Security-Policy forbids. What little is interpolated is escaped anyway.
 */

/** `&`, `<`, `>`, `"` and `'` as entities: safe in text and in a quoted attribute. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);
}

function head(title: string, version: string, extra = ''): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<link rel="icon" href="data:,">
<title>${escapeHtml(title)}</title>
<link rel="stylesheet" href="/assets/${escapeHtml(version)}/style.css">
${extra}</head>
`;
}

/** What the login page says above its button: nothing, a wrong token, or too many of them. */
export type LoginNotice = 'none' | 'wrong' | 'limited';

const NOTICES: Readonly<Record<LoginNotice, string>> = {
  none: '',
  wrong: '<p class="error" role="alert">That is not the token this server was given.</p>\n',
  limited: '<p class="error" role="alert">Too many wrong tokens from this address: try again in a few minutes.</p>\n',
};

/** The login page with `notice` (a fixed text: nothing of the request is echoed). */
export function loginPage(version: string, notice: LoginNotice): string {
  return `${head('bsworker: log in', version)}<body class="login">
<main id="main">
<h1>bsworker</h1>
<form method="post" action="/login" class="card">
<label for="token">API token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus spellcheck="false">
${NOTICES[notice]}<button type="submit">Log in</button>
<p class="hint">The token <code>bsworker serve</code> was given (--token-file or BSWORKER_TOKEN), or the one it printed at start.</p>
</form>
</main>
</body>
</html>
`;
}

/** The shell of every dashboard view: the client (hash routing) fills `#main`. */
export function shellPage(version: string, csrfToken: string): string {
  const v = escapeHtml(version);
  const extra = `<meta name="csrf-token" content="${escapeHtml(csrfToken)}">
<link rel="stylesheet" href="/assets/${v}/uPlot.min.css">
<script defer src="/assets/${v}/uPlot.iife.min.js"></script>
<script type="module" src="/assets/${v}/app.js"></script>
`;
  return `${head('bsworker', version, extra)}<body>
<header class="top">
<a class="brand" href="#/">bsworker</a>
<nav aria-label="Main"><a href="#/" data-view="overview">Overview</a> <a href="#/find" data-view="find">Find</a> <a href="#/tasks" data-view="tasks">Tasks</a> <a href="#/workers" data-view="workers">Workers</a></nav>
<button type="button" id="logout" class="quiet">Log out</button>
</header>
<main id="main" tabindex="-1"><p>Loading…</p></main>
<div id="toast" role="status" aria-live="polite"></div>
</body>
</html>
`;
}

/** The page shown when the client was not built (a checkout without `npm run build`). */
export function notBuiltPage(why: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>bsworker</title></head><body><p>The dashboard's client is not built (${escapeHtml(why)}): run <code>npm run build</code>.</p></body></html>\n`;
}
