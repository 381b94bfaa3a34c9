using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Thrivestack.EfCore.Sample.Migrations
{
    /// <inheritdoc />
    public partial class AddThrivestackBackfill : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateTable(
                name: "thrivestack_backfill",
                columns: table => new
                {
                    name = table.Column<string>(type: "TEXT", maxLength: 200, nullable: false),
                    entity = table.Column<string>(type: "TEXT", maxLength: 300, nullable: false),
                    last_key = table.Column<string>(type: "TEXT", maxLength: 2000, nullable: true),
                    processed = table.Column<long>(type: "INTEGER", nullable: false),
                    enqueued = table.Column<long>(type: "INTEGER", nullable: false),
                    started_at = table.Column<DateTime>(type: "TEXT", nullable: true),
                    completed_at = table.Column<DateTime>(type: "TEXT", nullable: true),
                    updated_at = table.Column<DateTime>(type: "TEXT", nullable: false),
                    lock_owner = table.Column<string>(type: "TEXT", maxLength: 200, nullable: true),
                    lock_expires_at = table.Column<DateTime>(type: "TEXT", nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("pk_thrivestack_backfill", x => new { x.name, x.entity });
                });
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "thrivestack_backfill");
        }
    }
}
