// The forwarder many teams run in front of their backend instead of a relay:
// answer Apple at once, then pass the body on with fetch(). Nothing is stored,
// so a crash or a backend outage between the 200 and the fetch loses the
// notification. go run ./bench measures it as the "usual forwarder" baseline.
//
// Environment: PORT (listen on 127.0.0.1:PORT), TARGET_URL (where to forward).
const express = require('express');

const port = Number(process.env.PORT || 3000);
const target = process.env.TARGET_URL;
if (!target) {
  console.error('TARGET_URL is required');
  process.exit(2);
}

const app = express();

app.post('/asn/:app', express.raw({ type: '*/*', limit: '1mb' }), (req, res) => {
  res.sendStatus(200);
  fetch(target, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: req.body,
  }).catch((err) => console.error('forward failed:', err.message));
});

app.get('/healthz', (req, res) => res.send('ok\n'));

const server = app.listen(port, '127.0.0.1', () => console.log(`listening on 127.0.0.1:${port}`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
