// Lint for the TypeScript sources: the recommended rules of ESLint and typescript-eslint. Formatting is Prettier's
// job (.prettierrc), so no stylistic rules here.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', 'build/', 'build-sanitize/', 'dist/', 'runs/', 'docs/', 'models/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      // `_name` marks a binding kept for its position (destructuring, callback arity).
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' },
      ],
    },
  },
  {
    files: ['**/*.js', '**/*.cjs', '**/*.mjs'],
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        require: 'readonly',
        module: 'writable',
        __dirname: 'readonly',
      },
    },
    // The gyp helper scripts are CommonJS: node-gyp runs them with plain node.
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
