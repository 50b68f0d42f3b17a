exports.client = require('./lib/client');
exports.LOWEST_PRIORITY = exports.client.LOWEST_PRIORITY;
exports.worker = require('./lib/worker');
exports.runner = require('./lib/runner');
