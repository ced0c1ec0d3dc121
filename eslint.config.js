// Lint configuration: typescript-eslint's recommended rules for all
// TypeScript sources; generated and third-party trees are ignored.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'enforcer/native/build/**', 'test/vm/out/**', '**/*.js'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-control-regex': 'off', // control characters are matched on purpose to reject them in paths
    },
  },
);
