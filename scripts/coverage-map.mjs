/**
 * tap's `coverage-map`: every test file, and every process it starts, records
 * coverage of the agent's sources only (not of test helpers, fixtures or bundles).
 * The list travels to child processes in the environment, with tap's loader.
 */
export default () => 'agent/**/*.ts';
