// Lint rules for the TypeScript sources of the JupyterLab extension (strict, no `any`).
import eslint from '@eslint/js';
import prettier from 'eslint-config-prettier';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['lib/', 'node_modules/', 'nb2pipe/', '.venv/', '**/*.js'] },
  eslint.configs.recommended,
  ...tseslint.configs.strict,
  {
    files: ['labextension/**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-non-null-assertion': 'error',
      '@typescript-eslint/explicit-module-boundary-types': 'error',
      eqeqeq: 'error',
      curly: 'error'
    }
  },
  prettier
);
