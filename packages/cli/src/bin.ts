#!/usr/bin/env node
import { processOutput } from './cli-output.js';
import { runCli } from './run-cli.js';

process.exitCode = await runCli(process.argv.slice(2), processOutput);
