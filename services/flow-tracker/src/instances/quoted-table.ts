import { DataSource, type EntityManager, type EntityTarget, type ObjectLiteral } from 'typeorm';

/** The quoted, schema-qualified table name of an entity, for raw SQL. */
export function quotedTable(source: DataSource | EntityManager, entity: EntityTarget<ObjectLiteral>): string {
  const metadata = (source instanceof DataSource ? source : source.dataSource).getMetadata(entity);
  return `"${metadata.schema ?? 'public'}"."${metadata.tableName}"`;
}
