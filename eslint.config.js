// A small, deliberate rule set: correctness rules from the recommended sets,
// plus the few that catch real bugs in async/server code. The promise rules
// are type-aware (typescript-eslint's project service reads each file's
// nearest tsconfig.json).
const js = require("@eslint/js");
const tseslint = require("typescript-eslint");

module.exports = tseslint.config(
  {
    ignores: [
      "**/dist/**", "**/node_modules/**", "test-output/**", "**/gen/**", "test/fixtures/**", "templates/**", "admin/ui/dist/**",
      "*.js", "scripts/**", "bench/results/**",
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: __dirname },
    },
    rules: {
      "@typescript-eslint/no-explicit-any": "off",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrors: "none" }],
      "@typescript-eslint/no-require-imports": "off",
      // A promise nobody awaits or catches is an unhandled rejection waiting to crash the process.
      "@typescript-eslint/no-floating-promises": "error",
      // An async function where a callback's return value is ignored (event handlers, forEach) loses its rejections.
      "@typescript-eslint/no-misused-promises": "error",
      "eqeqeq": ["error", "always", { null: "ignore" }],
      "no-constant-condition": ["error", { checkLoops: false }],
      "prefer-const": "error",
      "no-var": "error",
    },
  },
);
