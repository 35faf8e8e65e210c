#!/usr/bin/env node
import { runCli } from './run.js';

// The composition root of the CLI: the only place it reads the process environment.
process.exitCode = await runCli(process.argv.slice(2), process.env, { stdout: process.stdout, stderr: process.stderr });
