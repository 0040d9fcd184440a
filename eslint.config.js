// ESLint (flat config): typescript-eslint's recommended rules on every TypeScript file; `npm test` runs it.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', '.build-test-*/', 'data/', '.tap/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  { files: ['**/*.mjs', '**/*.js'], languageOptions: { globals: globals.node } },
  {
    rules: {
      // Sanitisers match control characters on purpose (NUL, C0, DEL in values we sign or store).
      'no-control-regex': 'off',
      // `_name` marks a value deliberately unused (destructuring it away, an ignored parameter).
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', destructuredArrayIgnorePattern: '^_' },
      ],
    },
  },
);
